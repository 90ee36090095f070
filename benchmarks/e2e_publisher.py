"""A load generator fast enough to saturate emon: MQTT 3.1.1 QoS 1 PUBLISH packets written to a plain
socket, PUBACKs counted by a reader thread.

``simulators.load`` (paho-mqtt) queues publishes in one thread and sends them from paho's network
thread; on this 2-core machine the two threads fight over the GIL and the broker acknowledged only
≈6-7k of 20k fixes/s offered (measured with no subscriber at all), so it measured the generator,
not emon. This writer encodes the packets itself (a few µs each) and sends them in one ``sendall``
per 5 ms tick. Same devices (``bench-{i:06d}``), payloads and per-device ``seq`` as
``simulators.load``; ``ts`` is the time of the tick (the publish time). Devices given a
:class:`benchmarks.e2e_tracks.Crossing` report their position on it at the tick instead of a fixed one
(the offenders driving through their zones).
"""

from __future__ import annotations

import contextlib
import math
import select
import socket
import threading
import time

from benchmarks.e2e_tracks import Crossing
from simulators import topics
from simulators.load import LoadStats, _heads, bench_device_id

TICK_S = 0.005
_HEAD = b'{"lat":%.6f,"lon":%.6f,"acc":8.0,"src":"gnss","seq":'  # as simulators.load._heads


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _connect_packet(client_id: str) -> bytes:
    cid = client_id.encode()
    # protocol "MQTT" level 4, clean session, keepalive 0 (no PINGs: only PUBACKs come back)
    body = b"\x00\x04MQTT\x04\x02\x00\x00" + len(cid).to_bytes(2, "big") + cid
    return b"\x10" + _varint(len(body)) + body


def publish_raw(
    n_devices: int,
    rate: float,
    duration_s: float,
    prefix: str,
    host: str = "127.0.0.1",
    port: int = 1883,
    crossings: dict[int, Crossing] | None = None,
) -> LoadStats:
    """Publish ``rate`` fixes/s QoS 1 round-robin over ``n_devices`` for ``duration_s``; wait (bounded)
    for every PUBACK. ``elapsed_s`` is the sending phase. ``crossings``: device index → its track,
    whose time 0 is the first publish."""
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(_connect_packet(f"bench-pub-{time.monotonic_ns() % 10**9}"))
    connack = sock.recv(4)
    if len(connack) != 4 or connack[0] != 0x20 or connack[3] != 0:
        raise RuntimeError(f"MQTT CONNACK refused: {connack!r}")
    received = 0
    stop = threading.Event()

    def read() -> None:
        nonlocal received
        while not stop.is_set():
            # select, not a socket timeout: a timeout would also apply to sendall in the writer.
            ready, _, _ = select.select([sock], [], [], 0.5)
            if not ready:
                continue
            try:
                data = sock.recv(1 << 16)
            except OSError:
                return
            if not data:
                return
            received += len(data)

    reader = threading.Thread(target=read, name="puback-reader", daemon=True)
    reader.start()
    # Per device: PUBLISH fixed header needs the total length, so keep topic and head apart.
    heads = _heads(0, n_devices)
    moving: list[Crossing | None] = [None] * n_devices
    for k, crossing in (crossings or {}).items():
        moving[k] = crossing
    names = [topics.fix_topic(bench_device_id(i), prefix).encode() for i in range(n_devices)]
    topic_parts = [len(t).to_bytes(2, "big") + t for t in names]
    total = math.floor(rate * duration_s)
    sent = 0
    t0 = time.perf_counter()
    while sent < total:
        due = min(total, math.floor(rate * (time.perf_counter() - t0)) + 1)
        if due <= sent:
            time.sleep(TICK_S)
            continue
        t_rel, t_wall = time.perf_counter() - t0, time.time()
        now = b'"ts":%.3f}' % t_wall
        chunks = []
        for n in range(sent, due):
            k = n % n_devices
            track = moving[k]
            head = heads[k] if track is None else _HEAD % track.at(t_rel)
            payload = head + b"%d," % (n // n_devices + 1) + now
            tp = topic_parts[k]
            pid = (n % 65535 + 1).to_bytes(2, "big")
            chunks.append(b"\x32" + _varint(len(tp) + 2 + len(payload)) + tp + pid + payload)
        sock.sendall(b"".join(chunks))
        sent = due
    elapsed = time.perf_counter() - t0
    deadline = time.monotonic() + max(10.0, duration_s)
    while received // 4 < sent and time.monotonic() < deadline:
        time.sleep(0.01)
    acked = received // 4
    stop.set()
    with contextlib.suppress(OSError):
        sock.sendall(b"\xe0\x00")
    reader.join(2)
    sock.close()
    return LoadStats(sent, acked, elapsed, sent / elapsed if elapsed else 0.0)
