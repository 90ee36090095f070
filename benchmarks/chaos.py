"""Chaos suite: several emon instances under sustained QoS 1 load, faults in turn (issue 11).

Private PostgreSQL, Redis and Mosquitto on free ports (the shared servers are never touched), three
``emon serve`` subprocesses (instance ids c1..c3). Under ``--rate`` fixes/s (arrays of ``--per-msg``
fixes per QoS 1 message over ``--devices`` tags), in turn:

1. kill -9 the evaluation owner (never restarted)      4. stop Redis, start it empty
2. restart the broker                                  5. SIGSTOP the evaluation owner, SIGCONT after
3. stop PostgreSQL for ``--outage-s``                     ``--outage-s``
(6. on request: Redis hung (SIGSTOP) 5 s, then killed and started empty)

``--faults redis,redis-hang`` runs only the faults named. Two seconds into each fault an offender of
that fault's own case walks from 240 m to 90 m of its victim in 1.8 s (a contact ban of 300 m). Reported per fault: acknowledged fixes lost (PUBACKed but not stored at the
end), the breach alert (found or lost; seconds from the breach to the alert), alerts of that breach
under more than one id, and seconds from the end of the fault until fixes were stored and evaluated
again. Bounded: about 5 × (outage + 20 s) plus start-up.

    .venv/bin/python -m benchmarks.chaos [--rate 2000] [--outage-s 30] [--faults kill,broker,...]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
import httpx
import psycopg

from emon.demo import free_port
from emon.geo import destination
from emon.partitioning import lease_name, partition_of
from emon.settings import Settings
from tests.storage.private_pg import PrivatePostgres

TOKEN = "chaos-admin-token-0123456789"
VICTIM_AT = (52.3702, 4.8952)
FAULTS = (
    "kill -9 owner",
    "broker restart",
    "PostgreSQL stopped",
    "Redis back empty",
    "owner frozen",
    "Redis hung, back empty",
)
FAULT_NAMES = {"kill": 0, "broker": 1, "postgres": 2, "redis": 3, "freeze": 4, "redis-hang": 5}  # --faults
APPROACH_M = (240, 210, 180, 150, 120, 90)  # the offender's walk to the victim, one fix every 0.3 s


@dataclass
class Servers:
    dir: Path
    pg: PrivatePostgres
    redis_port: int = field(default_factory=free_port)
    mqtt_port: int = field(default_factory=free_port)
    redis: subprocess.Popen[bytes] | None = None
    broker: subprocess.Popen[bytes] | None = None

    def start_redis(self) -> None:
        self.redis = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.redis_port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--bind",
                "127.0.0.1",
            ],
            stdout=subprocess.DEVNULL,
        )

    def start_broker(self) -> None:
        conf = self.dir / "mosquitto.conf"
        conf.write_text(
            f"listener {self.mqtt_port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {self.dir}/\nmax_queued_messages 1500000\n"
            "max_queued_bytes 1073741824\nmax_inflight_messages 1000\n"
            f"user {getpass.getuser()}\n"
        )  # a root run keeps its own temporary files readable
        self.broker = subprocess.Popen(["mosquitto", "-c", str(conf)], stderr=subprocess.DEVNULL)

    @staticmethod
    def stop(proc: subprocess.Popen[bytes] | None) -> None:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait(10)


@dataclass
class Instance:
    name: str
    port: int
    proc: subprocess.Popen[bytes]


@dataclass
class Load:
    acked: set[tuple[str, int]] = field(default_factory=set)
    sent: int = 0
    failed: int = 0
    running: bool = True


@contextlib.contextmanager
def servers() -> Iterator[Servers]:
    d = Path(tempfile.mkdtemp(prefix="emon-chaos-"))
    with PrivatePostgres() as pg:
        s = Servers(d, pg)
        s.start_redis()
        s.start_broker()
        try:
            time.sleep(0.5)
            yield s
        finally:
            s.stop(s.broker)
            s.stop(s.redis)
            shutil.rmtree(d, ignore_errors=True)


def start_instance(s: Servers, name: str, log_dir: Path) -> Instance:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMON_")}
    env.update(
        {
            "EMON_DATABASE_URL": s.pg.url,
            "EMON_REDIS_URL": f"redis://127.0.0.1:{s.redis_port}/0",
            "EMON_MQTT_URL": f"mqtt://127.0.0.1:{s.mqtt_port}",
            "EMON_ADMIN_TOKEN": TOKEN,
            "EMON_HTTP_PORT": str(port),
            "EMON_INSTANCE_ID": name,
            "EMON_MQTT_CLIENT_ID": f"emon-{name}",
            "EMON_LOG_LEVEL": "WARNING",
            "EMON_TICK_S": "1",
        }
    )
    log = (log_dir / f"{name}.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from emon.cli import main; sys.exit(main(['serve']))"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    log.close()
    return Instance(name, port, proc)


async def ready(i: Instance, within_s: float = 60) -> None:
    deadline = time.monotonic() + within_s
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{i.port}", timeout=2) as c:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if (await c.get("/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise TimeoutError(f"{i.name} not ready")


async def query(s: Servers, sql: str, *args: object) -> list[tuple[object, ...]]:
    async with await psycopg.AsyncConnection.connect(s.pg.url, options="-c search_path=emon") as conn:
        cur = await conn.execute(sql.encode(), args or None)
        return list(await cur.fetchall())


async def owner(s: Servers, case_id: str) -> str | None:
    """The instance evaluating ``case_id`` now: the holder of its partition's lease."""
    rows = await query(
        s,
        "SELECT owner FROM cluster_leases WHERE name = %s AND expires_at > clock_timestamp()",
        lease_name(partition_of(case_id, PARTITIONS)),
    )
    return str(rows[0][0]) if rows else None


PARTITIONS = Settings().partitions  # the instances run with the default EMON_PARTITIONS


def fixes_json(distance_m: float, seqs: range) -> bytes:
    lat, lon = destination(*VICTIM_AT, 0, distance_m)
    now = time.time()
    return json.dumps(
        [
            {
                "ts": datetime.fromtimestamp(now - 0.001 * (len(seqs) - k), UTC).isoformat(),
                "lat": lat,
                "lon": lon,
                "acc": 5,
                "seq": seq,
            }
            for k, seq in enumerate(seqs)
        ]
    ).encode()


async def publish_load(s: Servers, load: Load, devices: int, rate: float, per_msg: int) -> None:
    """``rate`` fixes/s as QoS 1 arrays; a fix counts as acknowledged when its message's PUBACK came."""
    seq = 0
    interval = per_msg / rate
    while load.running:
        try:
            async with aiomqtt.Client(
                "127.0.0.1",
                s.mqtt_port,
                identifier=f"chaos-load-{time.monotonic_ns()}",
                max_inflight_messages=1000,
            ) as client:
                next_at = time.monotonic()
                pending: set[asyncio.Task[None]] = set()
                broken = asyncio.Event()
                while load.running and not broken.is_set():
                    device = f"load-{seq % devices:04d}"
                    seqs = range(seq * per_msg, (seq + 1) * per_msg)
                    seq += 1

                    async def one(
                        device: str = device, seqs: range = seqs, broken: asyncio.Event = broken
                    ) -> None:
                        try:
                            await client.publish(f"emon/v1/fix/{device}", fixes_json(9000, seqs), qos=1)
                        except aiomqtt.MqttError:
                            broken.set()  # not acknowledged: not counted; reconnect
                            return
                        load.acked.update((device, q) for q in seqs)

                    t = asyncio.create_task(one())
                    pending.add(t)
                    t.add_done_callback(pending.discard)
                    load.sent += per_msg
                    next_at += interval
                    await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                await asyncio.gather(*pending, return_exceptions=True)
                if broken.is_set():
                    raise aiomqtt.MqttError("a publish failed")
        except aiomqtt.MqttError:
            load.failed += 1
            await asyncio.sleep(0.5)


async def register(base: str, devices: int) -> None:
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
    ) as c:
        for i in range(devices):
            r = await c.post("/api/v1/devices", json={"device_id": f"load-{i:04d}", "kind": "ankle_tag"})
            assert r.status_code == 201, r.text
        for k in range(len(FAULTS)):
            for device, kind in ((f"tag-{k}", "ankle_tag"), (f"victim-{k}", "victim_device")):
                r = await c.post("/api/v1/devices", json={"device_id": device, "kind": kind})
                assert r.status_code == 201, r.text
            residence = destination(*VICTIM_AT, 0, 6000)
            case = {
                "case_id": f"case-{k}",
                "risk": "high",
                "offender_device": f"tag-{k}",
                "victim_device": f"victim-{k}",
                "residence": {"lat": residence[0], "lon": residence[1]},
                "order": {"contact_ban_m": 300},
            }
            r = await c.post("/api/v1/cases", json=case)
            assert r.status_code == 201, r.text


async def breach(s: Servers, k: int) -> float:
    """Case ``k``'s offender walks from 240 m to 90 m of the victim while both report (retrying through
    a broker restart): moving fixes of both devices, as the evidence rule needs (docs/safety.md)."""
    started = time.time()
    while True:
        try:
            async with aiomqtt.Client("127.0.0.1", s.mqtt_port) as c:
                for seq, distance in enumerate(APPROACH_M):
                    victim = {
                        "ts": datetime.now(UTC).isoformat(),
                        "lat": VICTIM_AT[0],
                        "lon": VICTIM_AT[1],
                        "acc": 10,
                    }
                    await c.publish(f"emon/v1/fix/victim-{k}", json.dumps(victim).encode(), qos=1)
                    await c.publish(f"emon/v1/fix/tag-{k}", fixes_json(distance, range(seq, seq + 1)), qos=1)
                    await asyncio.sleep(0.3)
            return started
        except aiomqtt.MqttError:
            await asyncio.sleep(0.5)


async def recovered(
    s: Servers, since: datetime, within_s: float, case_id: str
) -> tuple[float | None, float | None]:
    """Seconds from ``since`` until a fix stored after it, and until the watermark of ``case_id``'s
    partition passed it."""
    stored = evaluated = None
    t0 = time.monotonic()
    while time.monotonic() - t0 < within_s and (stored is None or evaluated is None):
        with contextlib.suppress(psycopg.Error):
            if stored is None and (
                await query(s, "SELECT 1 FROM fixes WHERE received_at > %s LIMIT 1", since)
            ):
                stored = time.monotonic() - t0
            if evaluated is None and (
                await query(
                    s,
                    "SELECT 1 FROM eval_partition_watermarks WHERE partitions = %s AND partition = %s "
                    "AND through > %s",
                    PARTITIONS,
                    partition_of(case_id, PARTITIONS),
                    since,
                )
            ):
                evaluated = time.monotonic() - t0
        await asyncio.sleep(0.2)
    return stored, evaluated


async def run(args: argparse.Namespace) -> None:
    log_dir = Path(tempfile.mkdtemp(prefix="emon-chaos-logs-"))
    with servers() as s:
        instances = {n: start_instance(s, n, log_dir) for n in ("c1", "c2", "c3")}
        try:
            for i in instances.values():
                await ready(i)
            await register(f"http://127.0.0.1:{instances['c1'].port}", args.devices)
            await asyncio.sleep(6)  # every instance has seen the devices (NOTIFY, or the 5 s re-read)
            load = Load()
            publisher = asyncio.create_task(publish_load(s, load, args.devices, args.rate, args.per_msg))
            await asyncio.sleep(5)
            results = []
            for k in args.faults:
                fault = FAULTS[k]
                current = await owner(s, f"case-{k}")
                victim = instances.get(current or "")
                print(f"-- {fault} (owner {current})", flush=True)
                began = time.time()
                breach_task: asyncio.Task[float] | None = None

                async def breach_soon(k: int = k) -> float:
                    await asyncio.sleep(2)
                    return await breach(s, k)

                breach_task = asyncio.create_task(breach_soon())
                if fault == "kill -9 owner" and victim is not None:
                    victim.proc.send_signal(signal.SIGKILL)
                    instances.pop(victim.name)
                elif fault == "broker restart":
                    Servers.stop(s.broker)
                    await asyncio.sleep(2)
                    s.start_broker()
                elif fault == "PostgreSQL stopped":
                    s.pg.stop()
                    await asyncio.sleep(args.outage_s)
                    s.pg.start()
                elif fault == "Redis back empty":
                    Servers.stop(s.redis)
                    await asyncio.sleep(5)
                    s.start_redis()
                elif fault == "Redis hung, back empty":
                    assert s.redis is not None
                    s.redis.send_signal(signal.SIGSTOP)  # connections accepted, nothing answered
                    await asyncio.sleep(5)
                    s.redis.kill()
                    s.redis.wait(10)
                    s.start_redis()
                elif fault == "owner frozen" and victim is not None:
                    victim.proc.send_signal(signal.SIGSTOP)
                    await asyncio.sleep(args.outage_s)
                    victim.proc.send_signal(signal.SIGCONT)
                ended = datetime.now(UTC)
                breach_at = await breach_task
                stored_s, evaluated_s = await recovered(s, ended, 60, f"case-{k}")
                alert_s: float | None = None
                ids: list[tuple[object, ...]] = []
                t0 = time.monotonic()
                while time.monotonic() - t0 < 30:
                    with contextlib.suppress(psycopg.Error):
                        ids = await query(
                            s,
                            "SELECT alert_id, extract(epoch FROM opened_at) FROM alerts "
                            "WHERE case_id = %s AND type = 'proximity_breach'",
                            f"case-{k}",
                        )
                    if ids:
                        alert_s = float(str(ids[0][1])) - breach_at
                        break
                    await asyncio.sleep(0.2)
                results.append((fault, ended.timestamp() - began, stored_s, evaluated_s, alert_s, len(ids)))
                await asyncio.sleep(5)
            load.running = False
            await publisher
            await asyncio.sleep(10)  # let the survivors drain the broker's queues
            stored = {
                (str(d), int(str(q)))
                for d, q in await query(s, "SELECT device_id, seq FROM fixes WHERE device_id LIKE 'load-%%'")
            }
            lost = load.acked - stored
            print(
                f"\nload: {load.sent} fixes offered, {len(load.acked)} acknowledged, {len(lost)} acknowledged "
                f"but not stored, {load.failed} publisher reconnects"
            )
            print(
                "| fault | lasted | stored again | evaluated again | breach alerted | alerts of the breach |"
            )
            print("|---|---|---|---|---|---|")
            for fault, lasted, st_s, ev_s, al_s, n in results:

                def f(x: float | None) -> str:
                    return "never" if x is None else f"{x:.1f} s"

                print(
                    f"| {fault} | {lasted:.0f} s | {f(st_s)} after | {f(ev_s)} after | "
                    f"{f(al_s)} after the breach | {n} |"
                )
            print(f"(logs in {log_dir})")
        finally:
            for i in instances.values():
                with contextlib.suppress(ProcessLookupError):
                    i.proc.send_signal(signal.SIGCONT)
                i.proc.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    i.proc.wait(10)


def _faults(text: str) -> list[int]:
    try:
        return [FAULT_NAMES[name.strip()] for name in text.split(",")]
    except KeyError as exc:
        raise argparse.ArgumentTypeError(f"unknown fault {exc}; known: {', '.join(FAULT_NAMES)}") from None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=float, default=2000.0, help="fixes per second offered (QoS 1)")
    p.add_argument("--per-msg", type=int, default=10, help="fixes per message (a buffered upload array)")
    p.add_argument("--devices", type=int, default=200)
    p.add_argument(
        "--outage-s", type=float, default=30.0, help="how long PostgreSQL is stopped and the owner frozen"
    )
    p.add_argument(
        "--faults",
        type=_faults,
        default=list(range(5)),
        help=f"comma-separated, run in the order given: {','.join(FAULT_NAMES)} (default: all but redis-hang)",
    )
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
