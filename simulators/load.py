"""A high-rate fix generator for the benchmark: N devices, an aggregate rate, QoS 1, paho-mqtt.

Devices are named ``bench-{i:06d}``. Each payload is a pre-encoded per-device head plus ``seq``
(per device, from 1, no gaps) and ``ts`` (Unix seconds), so the benchmark can count loss and
latency: ``{"lat":..,"lon":..,"acc":8.0,"src":"gnss","seq":17,"ts":1764070000.123}``.
Several processes (``processes``) share the devices when one Python process cannot keep up
(about 30-60k QoS 1 publishes/s per process, see /work/shared/MEASUREMENTS.md).
"""

from __future__ import annotations

import asyncio
import math
import secrets
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from simulators import topics
from simulators.errors import BrokerError

CENTRE = (52.0907, 5.1214)  # Utrecht Centraal; devices are spread over a ~20 km square around it


def bench_device_id(i: int) -> str:
    return f"bench-{i:06d}"


@dataclass(frozen=True, slots=True)
class LoadStats:
    """``sent`` publishes, ``acked`` PUBACKs (QoS 1; equals sent at QoS 0), ``elapsed_s`` real
    seconds of the sending phase, ``achieved_rate`` = sent / elapsed_s messages per second."""

    sent: int
    acked: int
    elapsed_s: float
    achieved_rate: float


def _heads(first: int, count: int) -> list[bytes]:
    out = []
    for i in range(first, first + count):
        # A deterministic low-discrepancy spread, so fixes are not all in one place.
        dx, dy = (i * 0.6180339887) % 1.0 - 0.5, (i * 0.7548776662) % 1.0 - 0.5
        lat, lon = CENTRE[0] + dy * 0.18, CENTRE[1] + dx * 0.29
        out.append(b'{"lat":%.6f,"lon":%.6f,"acc":8.0,"src":"gnss","seq":' % (lat, lon))
    return out


def _publish_slice(
    first: int, count: int, rate: float, duration_s: float, host: str, port: int, prefix: str, qos: int
) -> tuple[int, int, float]:
    """Blocking worker: devices ``first..first+count-1`` at ``rate`` msg/s; returns (sent, acked, s)."""
    acked = 0
    done = threading.Condition()

    def on_publish(_c: mqtt.Client, _u: object, _mid: int, _rc: object, _p: object) -> None:
        nonlocal acked
        with done:
            acked += 1
            done.notify_all()

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"load-{secrets.token_hex(4)}-{first}", clean_session=True
    )
    client.on_publish = on_publish
    client.max_inflight_messages_set(2000)
    client.max_queued_messages_set(0)
    try:
        client.connect(host, port, keepalive=60)
    except OSError as exc:
        raise BrokerError(f"MQTT broker {host}:{port}: {exc}") from exc
    client.loop_start()
    try:
        names = [topics.fix_topic(bench_device_id(i), prefix) for i in range(first, first + count)]
        heads = _heads(first, count)
        sent = 0
        t0 = time.perf_counter()
        total = math.floor(rate * duration_s)
        while sent < total:
            due = min(total, math.floor(rate * (time.perf_counter() - t0)) + 1)
            if due <= sent:
                time.sleep(max(0.0, min(0.002, (sent + 1) / rate - (time.perf_counter() - t0))))
                continue
            now = time.time()
            for n in range(sent, due):
                k = n % count
                client.publish(names[k], heads[k] + b'%d,"ts":%.3f}' % (n // count + 1, now), qos=qos)
            sent = due
        elapsed = time.perf_counter() - t0
        with done:
            done.wait_for(lambda: acked >= sent or qos == 0, timeout=max(10.0, duration_s))
        return sent, (sent if qos == 0 else acked), elapsed
    finally:
        client.disconnect()
        client.loop_stop()


async def publish_load(
    n_devices: int,
    rate_per_s: float,
    duration_s: float,
    host: str,
    port: int,
    prefix: str,
    qos: int = 1,
    processes: int = 1,
) -> LoadStats:
    """Publish ``rate_per_s`` fixes per second in total, round-robin over ``n_devices`` devices,
    for ``duration_s`` seconds; waits for the PUBACKs. With ``processes > 1`` the devices are
    split into contiguous slices, one per spawned process, each sending its share of the rate."""
    if n_devices < 1 or rate_per_s <= 0 or duration_s <= 0 or processes < 1:
        raise ValueError("n_devices, rate_per_s, duration_s and processes must be positive")
    processes = min(processes, n_devices)
    sizes = [n_devices // processes + (1 if i < n_devices % processes else 0) for i in range(processes)]
    firsts = [sum(sizes[:i]) for i in range(processes)]
    args = [
        (f, s, rate_per_s * s / n_devices, duration_s, host, port, prefix, qos)
        for f, s in zip(firsts, sizes, strict=True)
    ]
    if processes == 1:
        results = [await asyncio.to_thread(_publish_slice, *args[0])]
    else:
        loop = asyncio.get_running_loop()
        with ProcessPoolExecutor(processes, mp_context=get_context("spawn")) as pool:
            results = list(
                await asyncio.gather(*(loop.run_in_executor(pool, _publish_slice, *a) for a in args))
            )
    sent = sum(r[0] for r in results)
    elapsed = max(r[2] for r in results)
    return LoadStats(sent, sum(r[1] for r in results), elapsed, sent / elapsed if elapsed else 0.0)
