"""What an emon outage costs the broker: queue fixes for emon's offline session, then drain them.

Runs Mosquitto with ``deploy/mosquitto/`` as shipped (TLS, password file, ACL, queue limits; a
private instance on a free port), creates emon's persistent session, takes emon "down", has
devices publish N fix-sized QoS 1 messages (152-byte payloads), and reports the broker's resident
memory per queued message, then reconnects emon and checks every message arrives (none dropped)
and how fast the queue drains. The figure sizes ``max_queued_messages`` in deploy/mosquitto/README.md.

    .venv/bin/python -m benchmarks.mosquitto_queue [--messages 200000] [--devices 100]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

from emon.mqtt.client import MqttClient
from emon.mqtt.endpoint import Endpoint
from emon.mqtt.protocol import SessionOptions
from tests.mqtt.broker import PrivateBroker, private_broker

PAYLOAD = (
    b'{"ts": "2026-11-25T21:14:03+01:00", "lat": 52.0907, "lon": 5.1214, "acc": 8, "seq": 1812, '
    b'"batt": 71, "src": "gnss", "spd": 1.2, "hdg": 180.0, "pad": "xxxxxxxxxxxxxxxx"}'
)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


@contextlib.asynccontextmanager
async def running(client: MqttClient) -> AsyncIterator[MqttClient]:
    task = asyncio.create_task(client.run())
    try:
        await asyncio.wait_for(client.connected.wait(), 10)
        yield client
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def emon_client(broker: PrivateBroker, sink: list[int] | None = None) -> MqttClient:
    endpoint = Endpoint("127.0.0.1", broker.port, broker.tls(), "emon", broker.passwords["emon"])
    options = SessionOptions("emon-ingest", subscriptions=(("emon/v1/fix/+", 1),), ack_on_receipt=True)
    counter = sink if sink is not None else []

    def count(topic: str, payload: bytes, ack: object) -> None:
        counter[0] += 1

    if not counter:
        counter.append(0)
    return MqttClient(endpoint, options, count)


async def main(messages: int, devices: int) -> None:
    users = ["emon", *(f"tag-{i}" for i in range(devices))]
    async with private_broker("", users) as broker:
        assert broker.process is not None
        pid = broker.process.pid
        async with running(emon_client(broker)):
            pass  # emon's persistent session and subscription now exist; emon is "down"
        before = rss_kib(pid)
        per_device = messages // devices
        started = time.perf_counter()

        async def publish_as(user: str) -> None:
            endpoint = Endpoint("127.0.0.1", broker.port, broker.tls(), user, broker.passwords[user])
            client = MqttClient(endpoint, SessionOptions(user, clean=True, session_expiry_s=0))
            async with running(client):
                topic = f"emon/v1/fix/{user}"
                for start in range(0, per_device, 500):
                    await asyncio.gather(
                        *(
                            client.publish(topic, PAYLOAD, timeout_s=120)
                            for _ in range(min(500, per_device - start))
                        )
                    )

        for i in range(0, devices, 10):
            await asyncio.gather(*(publish_as(u) for u in users[1 + i : 1 + i + 10]))
        published = per_device * devices
        publish_s = time.perf_counter() - started
        await asyncio.sleep(1.0)
        queued_rss = rss_kib(pid)
        counter = [0]
        started = time.perf_counter()
        async with running(emon_client(broker, counter)):
            while True:
                last = counter[0]
                await asyncio.sleep(1.0)
                if counter[0] == last:
                    break
        drain_s = time.perf_counter() - started - 1.0
        print(f"Mosquitto with deploy/mosquitto/mosquitto.conf (TLS), {devices} devices")
        print(
            f"published {published:,} QoS 1 fixes of {len(PAYLOAD)} B while emon was down in {publish_s:.1f}s"
        )
        print(
            f"broker RSS {before / 1024:.1f} MiB → {queued_rss / 1024:.1f} MiB: "
            f"{(queued_rss - before) * 1024 / published:.0f} B per queued message"
        )
        print(
            f"emon reconnected and received {counter[0]:,} of {published:,} "
            f"({published - counter[0]:,} dropped) in {drain_s:.1f}s ({counter[0] / max(drain_s, 1e-9):,.0f}/s)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--devices", type=int, default=100)
    args = parser.parse_args()
    asyncio.run(main(args.messages, args.devices))
