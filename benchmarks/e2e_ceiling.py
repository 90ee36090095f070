"""The ceiling: a bare aiomqtt subscriber (QoS 1, persistent session, the same MQTT 5 options as
emon's ingest) that only receives and counts. Run as its own process, like emon:

    .venv/bin/python -m benchmarks.e2e_ceiling --prefix P --expect N [--idle 5]

Prints one JSON line once subscribed (``{"ready": true}``) and one at the end:
``{"count": n, "first": t, "last": t}`` (``time.time()`` of the first and last message).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from emon.mqtt import wire


def connect_properties() -> Properties:
    """paho CONNECT properties equal to emon's ingest (Session Expiry never, Receive Maximum 65,535)."""
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = wire.SESSION_NEVER_EXPIRES
    props.ReceiveMaximum = wire.RECEIVE_MAXIMUM
    return props


async def run(prefix: str, expect: int, idle_s: float, client_id: str) -> dict[str, float]:
    count, first, last = 0, 0.0, 0.0
    async with aiomqtt.Client(
        "127.0.0.1",
        1883,
        identifier=client_id,
        protocol=aiomqtt.ProtocolVersion.V5,
        clean_start=False,
        properties=connect_properties(),
        keepalive=30,
        max_queued_incoming_messages=0,
    ) as client:
        await client.subscribe(f"{prefix}/emon/v1/fix/+", qos=1)
        print(json.dumps({"ready": True}), flush=True)
        started = time.time()

        async def receive() -> None:
            nonlocal count, first, last
            async for _message in client.messages:
                last = time.time()
                if count == 0:
                    first = last
                count += 1
                if count >= expect:
                    return

        # A plain ``async for`` (no per-message timeout task); a watchdog ends it after idle_s silence.
        task = asyncio.create_task(receive())
        while not task.done():
            await asyncio.sleep(0.25)
            if time.time() - (last or started) > idle_s:
                task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    # Forget the persistent session again.
    async with aiomqtt.Client("127.0.0.1", 1883, identifier=client_id, clean_session=True):
        pass
    return {"count": count, "first": first, "last": last}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--expect", type=int, required=True)
    ap.add_argument("--idle", type=float, default=5.0)
    ap.add_argument("--client-id", default="emon-bench-ceiling")
    args = ap.parse_args()
    result = asyncio.run(run(args.prefix, args.expect, args.idle, args.client_id))
    print(json.dumps(result), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
