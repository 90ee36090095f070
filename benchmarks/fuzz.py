"""Fuzz benchmark (not a test): hostile messages through Mosquitto into a running ``emon serve``.

    .venv/bin/python -m benchmarks.fuzz [--hostile 100000] [--rate 5000] [--mixed-s 20]
                                        [--valid-rate 2000] [--poison-rate 10] [--seed 7]

Phase 1 (flood): ``--hostile`` hostile messages at ``--rate``/s QoS 1 — the issue's two poison
messages, deep and unbalanced nesting, NUL and lone surrogates (escaped and as raw bytes), numbers
beyond any range, long strings, random bytes, arrays of 6,000 bad fixes, random device ids and
topics — with one valid fix after every 40. Reported: dead-letter rows against their bound (at most
one per message, at most ``EMON_DEAD_LETTER_ROWS_PER_MIN`` per started minute), the table's bytes,
messages only counted, valid fixes stored, emon's RSS before and after, and whether emon stayed up.

Phase 2 (mixed): ``--valid-rate`` valid fixes/s with ``--poison-rate`` poison messages/s mixed in,
for ``--mixed-s`` seconds: the latency publish → stored of the valid fixes (``received_at − ts`` from
the rows; ``ts`` is the publish time), p50/p99/max and the share stored within a second.

Runs on the shared PostgreSQL (5432) and Redis (6379) on its own schema and Redis prefix, and on a
private Mosquitto (its own port, ``max_queued_messages 1000000``: Mosquitto's default of 1,000 queued
beyond the in-flight window drops QoS 1 messages whenever emon falls behind a flood, which is a broker
setting, not something emon can undo; ``--shared-broker`` uses 127.0.0.1:1883 instead). Every wait is
bounded; the schema is dropped and the broker stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import select
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import aiomqtt
import httpx
import psutil
import psycopg

from benchmarks.e2e_metrics import parse_prometheus
from benchmarks.e2e_publisher import _connect_packet, _varint
from benchmarks.e2e_setup import PG_URL, clear_redis, emon_env, prepare_schema, start_emon
from emon.demo import free_port
from emon.storage.postgres import drop_schema
from simulators.load import bench_device_id

N_DEVICES = 100
TICK_S = 0.005
Message = tuple[str, bytes]


class Publisher:
    """MQTT 3.1.1 QoS 1 PUBLISH packets written to a plain socket; PUBACKs counted by a reader thread
    (as ``benchmarks.e2e_publisher``, but with any topic and payload)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 1883) -> None:
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(_connect_packet(f"fuzz-pub-{uuid.uuid4().hex[:8]}"))
        connack = self.sock.recv(4)
        if len(connack) != 4 or connack[0] != 0x20 or connack[3] != 0:
            raise RuntimeError(f"MQTT CONNACK refused: {connack!r}")
        self.sent = 0
        self._received = 0
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read, name="puback-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.sock], [], [], 0.5)
            if not ready:
                continue
            try:
                data = self.sock.recv(1 << 16)
            except OSError:
                return
            if not data:
                return
            self._received += len(data)

    @property
    def acked(self) -> int:
        return self._received // 4

    def run(self, rate: float, total: int, next_message: Callable[[int], Message]) -> float:
        """Publish ``total`` messages at ``rate``/s; return the sending time in seconds."""
        t0 = time.perf_counter()
        done = 0
        while done < total:
            due = min(total, math.floor(rate * (time.perf_counter() - t0)) + 1)
            if due <= done:
                time.sleep(TICK_S)
                continue
            chunks = []
            for n in range(done, due):
                topic, payload = next_message(n)
                tp = topic.encode("utf-8", "surrogatepass")
                tp = len(tp).to_bytes(2, "big") + tp
                pid = ((self.sent + n - done) % 65535 + 1).to_bytes(2, "big")
                chunks.append(b"\x32" + _varint(len(tp) + 2 + len(payload)) + tp + pid + payload)
            self.sock.sendall(b"".join(chunks))
            self.sent += due - done
            done = due
        return time.perf_counter() - t0

    def wait_acked(self, within_s: float) -> None:
        deadline = time.monotonic() + within_s
        while self.acked < self.sent and time.monotonic() < deadline:
            time.sleep(0.01)

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self.sock.sendall(b"\xe0\x00")
        self._reader.join(2)
        self.sock.close()


class Traffic:
    """Deterministic hostile and valid messages under one topic prefix."""

    def __init__(self, prefix: str, seed: int) -> None:
        self.prefix = prefix
        self.rng = random.Random(seed)
        self.seq = 0
        self.valid_sent = 0
        bad = json.dumps([{"ts": "x", "lat": 999, "acc": -1}] * 6_000).encode()  # ≈ 190 KB
        self._kinds: list[Callable[[], Message]] = [
            lambda: (self._fix_topic(), b"[" * 3000 + b"]" * 3000),
            lambda: (self._event_topic(), self._event(b'"note":"a\\u0000b"')),
            lambda: (self._event_topic(), self._event(b'"note":"\\ud800"')),
            lambda: (self._fix_topic(), b'["\xed\xa0\x80"]'),
            lambda: (self._fix_topic(), b"{" * self.rng.randint(10, 20_000)),
            lambda: (self._fix_topic(), b'{"ts": 1, "lat": 1' + b"0" * 400 + b', "lon": 5, "acc": 5}'),
            lambda: (self._event_topic(), self._event(b'"n":' + b"9" * 500)),
            lambda: (
                self._fix_topic(),
                b'{"ts": 1, "lat": 52, "lon": 5, "acc": 5, "note": "' + b"x" * 5_000 + b'"}',
            ),
            lambda: (self._fix_topic(), self.rng.randbytes(self.rng.randint(1, 400))),
            lambda: (self._fix_topic(), b'{"ts": 1, "lat": NaN, "lon": 5, "acc": 5}'),
            lambda: (self._fix_topic(), b"[]"),
            lambda: (
                self._event_topic(),
                self._event(b'"type2":"teleport"').replace(b"battery_low", b"teleport"),
            ),
            lambda: (f"{prefix}/emon/v1/fix/rand-{self.rng.getrandbits(48):x}", self._valid()),
            lambda: (f"{prefix}/emon/v1/event/bad id {self.rng.getrandbits(32):x}!", b"{}"),
            lambda: (f"{prefix}/owntracks/u{self.rng.getrandbits(32):x}/p", b'{"_type":"location"}'),
        ]
        self._big: Message = (self._fix_topic(), bad)

    def _fix_topic(self) -> str:
        return f"{self.prefix}/emon/v1/fix/{bench_device_id(self.rng.randrange(N_DEVICES))}"

    def _event_topic(self) -> str:
        return f"{self.prefix}/emon/v1/event/{bench_device_id(self.rng.randrange(N_DEVICES))}"

    def _event(self, extra: bytes) -> bytes:
        return b'{"type":"battery_low","ts":%.3f,%s}' % (time.time(), extra)

    def _valid(self) -> bytes:
        self.seq += 1
        return b'{"ts":%.3f,"lat":52.09,"lon":5.12,"acc":8,"seq":%d}' % (time.time(), self.seq)

    def valid(self) -> Message:
        self.valid_sent += 1
        return f"{self.prefix}/emon/v1/fix/{bench_device_id(self.seq % N_DEVICES)}", self._valid()

    def hostile(self, n: int) -> Message:
        if n % 1_000 == 999:
            return self._big
        return self._kinds[n % len(self._kinds)]()


class Sampler:
    """Every 0.5 s: emon's RSS and how many messages wait in its pipeline (the peaks are reported)."""

    def __init__(self, proc: psutil.Process, port: int) -> None:
        self.proc, self.port = proc, port
        self.max_rss = 0
        self.max_waiting = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with httpx.Client() as c:
            while not self._stop.wait(0.5):
                with contextlib.suppress(httpx.HTTPError, psutil.Error):
                    self.max_rss = max(self.max_rss, self.proc.memory_info().rss)
                    m = parse_prometheus(c.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5).text)
                    self.max_waiting = max(self.max_waiting, m.get("emon_ingest_waiting_messages", 0.0))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


@contextlib.contextmanager
def private_broker() -> Iterator[int]:
    """A Mosquitto on a free port with queues sized to ride out a flood; stopped on exit."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="emon-fuzz-mqtt-") as tmp:
        conf = Path(tmp) / "mosquitto.conf"
        conf.write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            "max_queued_messages 1000000\nmax_inflight_messages 0\n"
        )
        proc = subprocess.Popen(
            ["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("private mosquitto did not start")
                time.sleep(0.05)
            yield port
        finally:
            proc.terminate()
            proc.wait(10)


def scalar(schema: str, query: str) -> float:
    with psycopg.connect(PG_URL, options=f"-c search_path={schema},public") as conn:
        row = conn.execute(query.encode()).fetchone()
        return float(row[0]) if row and row[0] is not None else 0.0


def wait_until(check: Callable[[], bool], within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.25)
    return check()


async def metrics_of(port: int) -> dict[str, float]:
    async with httpx.AsyncClient() as c:
        return parse_prometheus((await c.get(f"http://127.0.0.1:{port}/metrics", timeout=10)).text)


def total(samples: dict[str, float], name: str) -> float:
    return sum(v for k, v in samples.items() if k == name or k.startswith(name + "{"))


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--hostile", type=int, default=100_000)
    ap.add_argument("--rate", type=float, default=5_000)
    ap.add_argument("--mixed-s", type=float, default=20)
    ap.add_argument("--valid-rate", type=float, default=2_000)
    ap.add_argument("--poison-rate", type=float, default=10)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--shared-broker", action="store_true", help="use the broker on 127.0.0.1:1883")
    args = ap.parse_args()
    with contextlib.ExitStack() as stack:
        broker_port = 1883 if args.shared_broker else stack.enter_context(private_broker())
        await run(args, broker_port)


async def run(args: argparse.Namespace, broker_port: int) -> None:

    tag = uuid.uuid4().hex[:8]
    port = free_port()
    env = emon_env(tag, port, 1000, 20)
    env["EMON_MQTT_URL"] = f"mqtt://127.0.0.1:{broker_port}"
    schema, prefix = env["EMON_DB_SCHEMA"], env["EMON_MQTT_TOPIC_PREFIX"]
    rows_per_min = int(env.get("EMON_DEAD_LETTER_ROWS_PER_MIN", "1000"))
    await asyncio.to_thread(prepare_schema, env, N_DEVICES, [])
    log_path = Path(tempfile.gettempdir()) / f"emon-fuzz-{tag}.log"
    em = await start_emon(env, port, log_path)
    proc = psutil.Process(em.proc.pid)
    traffic = Traffic(prefix, args.seed)
    try:
        rss_before = proc.memory_info().rss
        print(
            f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; emon pid {em.proc.pid}"
        )

        # Phase 1: the flood.
        pub = Publisher(port=broker_port)
        every = 40

        def flood(n: int) -> Message:
            return traffic.valid() if n % (every + 1) == every else traffic.hostile(n)

        messages = args.hostile + args.hostile // every
        t_start = time.monotonic()
        sampler = Sampler(proc, port)
        send_s = await asyncio.to_thread(pub.run, args.rate, messages, flood)
        await asyncio.to_thread(pub.wait_acked, 30)
        valid_flood = traffic.valid_sent
        stored_all = await asyncio.to_thread(
            wait_until, lambda: scalar(schema, "SELECT count(*) FROM fixes") >= valid_flood, 120
        )
        samples = await metrics_of(port)
        sampler.stop()
        flood_s = time.monotonic() - t_start
        rows = scalar(schema, "SELECT count(*) FROM dead_letters")
        table_bytes = scalar(schema, "SELECT pg_total_relation_size('dead_letters')")
        minutes = math.ceil(flood_s / 60)
        bound = min(messages - valid_flood, rows_per_min * minutes)
        rss_after = proc.memory_info().rss
        print(
            f"\nphase 1: {messages:,} messages ({messages - valid_flood:,} hostile, {valid_flood:,} valid) "
            f"sent in {send_s:.1f} s, {pub.acked:,} PUBACKed by the broker"
        )
        print(
            f"  valid fixes stored: {int(scalar(schema, 'SELECT count(*) FROM fixes')):,} of {valid_flood:,}"
            f"{'' if stored_all else '  (NOT ALL within 120 s)'}"
        )
        flood_lat = scalar(
            schema,
            "SELECT percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM received_at - ts)) FROM fixes",
        )
        print(f"  valid fixes publish → stored p99 {flood_lat * 1000:,.0f} ms (behind the hostile backlog)")
        print(
            f"  dead-letter rows: {int(rows):,} (bound: ≤ 1 per message and ≤ {rows_per_min:,}/min × "
            f"{minutes} min = {bound:,}); table {table_bytes / 1e6:.2f} MB"
        )
        print(
            f"  messages received by emon {total(samples, 'emon_messages_received_total'):,.0f}; "
            f"rows written {total(samples, 'emon_dead_letters_stored_total'):,.0f}, "
            f"messages only counted (over budget) {total(samples, 'emon_dead_letters_over_budget_total'):,.0f}, "
            f"rejected elements {total(samples, 'emon_rejected_total'):,.0f}"
        )
        print(
            f"  peak messages waiting in emon {sampler.max_waiting:,.0f}, peak RSS {sampler.max_rss / 1e6:.0f} MB"
        )
        print(
            f"  emon RSS {rss_before / 1e6:.0f} MB → {rss_after / 1e6:.0f} MB; still running: "
            f"{em.proc.poll() is None}; /readyz stalled gauge {samples.get('emon_ingest_stalled', -1):.0f}"
        )

        # Phase 2: valid fixes at a steady rate with a trickle of poison.
        ratio = max(1, round(args.valid_rate / args.poison_rate))
        mixed = int((args.valid_rate + args.poison_rate) * args.mixed_s)
        phase2_from = time.time()
        valid_before = traffic.valid_sent

        def trickle(n: int) -> Message:
            return traffic.hostile(n) if n % (ratio + 1) == ratio else traffic.valid()

        await asyncio.to_thread(pub.run, args.valid_rate + args.poison_rate, mixed, trickle)
        await asyncio.to_thread(pub.wait_acked, 30)
        expected = traffic.valid_sent
        await asyncio.to_thread(
            wait_until, lambda: scalar(schema, "SELECT count(*) FROM fixes") >= expected, 60
        )
        lat, rows2 = (
            "extract(epoch FROM received_at - ts)",
            f"FROM fixes WHERE ts >= to_timestamp({phase2_from})",
        )
        stored2 = scalar(schema, f"SELECT count(*) {rows2}")
        p50 = scalar(schema, f"SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY {lat}) {rows2}")
        p99 = scalar(schema, f"SELECT percentile_cont(0.99) WITHIN GROUP (ORDER BY {lat}) {rows2}")
        worst = scalar(schema, f"SELECT max({lat}) {rows2}")
        within = scalar(schema, f"SELECT avg(({lat} <= 1.0)::int) {rows2}")
        print(
            f"\nphase 2: {expected - valid_before:,} valid fixes at {args.valid_rate:,.0f}/s with "
            f"{args.poison_rate:,.0f} poison/s mixed in, for {args.mixed_s:.0f} s"
        )
        print(
            f"  stored {int(stored2):,}; publish → stored p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
            f"max {worst * 1000:.0f} ms; within 1 s: {within * 100:.2f} %"
        )
        print(
            f"  emon RSS {proc.memory_info().rss / 1e6:.0f} MB; dead-letter rows now "
            f"{int(scalar(schema, 'SELECT count(*) FROM dead_letters')):,}; still running: {em.proc.poll() is None}"
        )
        pub.close()
    finally:
        em.stop()
        await drop_schema(PG_URL, schema)
        clear_redis(env["EMON_REDIS_PREFIX"])
        # Remove emon's persistent session from the shared broker.
        if broker_port == 1883:
            async with aiomqtt.Client(
                "127.0.0.1", 1883, identifier=env["EMON_MQTT_CLIENT_ID"], clean_session=True
            ):
                pass


if __name__ == "__main__":
    asyncio.run(main())
