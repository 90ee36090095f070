"""CPU per message of emon's MQTT receive path (issue #14): prints figures, is not a test.

QoS 1 PUBLISH packets as Mosquitto delivers the e2e publisher's fixes to emon (MQTT 5, one fix per
message, 10,000 devices) are cut into socket reads of ``--read-bytes`` and go, in process, through
the steps the ingest loop runs for them, each measured on its own:

* ``wire``: :meth:`PacketReader.feed` (bytes → packets);
* ``session``: :meth:`Session.receive_data` (the above, plus the session rules);
* ``receive``: ``_Link.data_received`` with :meth:`Pipeline.submit` as the sink: everything from the
  socket read to the message queued for decoding;
* ``ack``: ``ack_all`` of the tokens of batches of ``--batch`` messages, as the pipeline acknowledges a
  committed batch (PUBACKs built and written to the transport);
* ``decode``: :meth:`Pipeline.decode` of those batches (as ``benchmarks.decode_bench`` measures it).

CPU time (``time.process_time``), the best of ``--repeat`` runs, not wall time: the cores are shared.
``--baseline DIR`` runs the same measurements with another checkout's ``emon`` (a directory holding
``emon/``) in a subprocess, alternating with this one round by round, so both see the same load::

    python -m benchmarks.mqtt_receive_bench --baseline /tmp/old-checkout --rounds 7

``--once`` prints one round as JSON (what the rounds run); ``--steps receive`` limits the steps, e.g.
for ``valgrind --tool=callgrind`` instruction counts.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

from emon.device import Device, DeviceKind, DeviceRegistry
from emon.ingest.pipeline import Pipeline
from emon.mqtt import client as mqtt_client
from emon.mqtt import wire
from emon.mqtt.endpoint import Endpoint
from emon.mqtt.protocol import Session, SessionOptions
from simulators import topics
from simulators.load import _heads, bench_device_id

DEVICES = 10_000
STEPS = ("wire", "session", "receive", "ack", "decode")


def publishes(count: int, now: float) -> bytes:
    """``count`` QoS 1 PUBLISH packets (v5, no properties), packet ids 1, 2, …, one fix each."""
    heads = _heads(0, DEVICES)
    stamp = b'"ts":%.3f}' % now
    out = bytearray()
    for n in range(count):
        device = n % DEVICES
        payload = heads[device] + b"%d," % (n // DEVICES + 1) + stamp
        out += wire.encode_publish(topics.fix_topic(bench_device_id(device)), payload, 1, n % 0xFFFF + 1)
    return bytes(out)


def reads(data: bytes, size: int) -> list[bytes]:
    """The stream cut as a socket would return it: ``size`` bytes a read, packets split anywhere."""
    return [data[i : i + size] for i in range(0, len(data), size)]


class _Transport(asyncio.Transport):
    """What ``_Link`` writes to: counts the bytes."""

    def __init__(self) -> None:
        super().__init__()
        self.written = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += len(data)

    def is_closing(self) -> bool:
        return False

    def abort(self) -> None:
        pass

    def close(self) -> None:
        pass


def _options() -> SessionOptions:
    return SessionOptions(
        client_id="bench", subscriptions=(("emon/v1/fix/+", 1),), ack_on_receipt=False, clean=False
    )


def _ready_session(session: Session) -> None:
    """CONNECT sent, CONNACK and SUBACK received: READY."""
    session.connect(0.0)
    v5 = session.options.version == wire.V5
    session.receive_data(b"\x20\x03\x00\x00\x00" if v5 else b"\x20\x02\x00\x00", 0.0)
    suback = b"\x90\x04\x00\x01\x00\x01" if v5 else b"\x90\x03\x00\x01\x01"
    session.receive_data(suback, 0.0)
    session.data_to_send()


def best_cpu_us(run: Callable[[], object], messages: int, repeat: int) -> float:
    """The lowest CPU µs per message of ``repeat`` runs (the least disturbed by other processes)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        run()
        best = min(best, time.process_time() - t0)
    return best * 1e6 / messages


async def one_round(
    count: int, read_bytes: int, batch: int, repeat: int, steps: list[str]
) -> dict[str, float]:
    wall = time.time()
    chunks = reads(publishes(count, wall), read_bytes)
    registry = DeviceRegistry([Device(bench_device_id(i), DeviceKind.ANKLE_TAG) for i in range(DEVICES)])
    # As emon does once started (emon.collector): the collector walks only what is allocated from now on.
    gc.collect()
    gc.freeze()
    figures: dict[str, float] = {}

    if "wire" in steps:

        def wire_run() -> None:
            reader = wire.PacketReader(wire.V5)
            n = 0
            for c in chunks:
                n += len(reader.feed(c))
            assert n == count

        figures["wire"] = best_cpu_us(wire_run, count, repeat)

    if "session" in steps:

        def session_run() -> None:
            session = Session(_options())
            _ready_session(session)
            n = 0
            for c in chunks:
                n += len(session.receive_data(c, 1.0))
            assert n == count

        figures["session"] = best_cpu_us(session_run, count, repeat)

    # decode() and submit() touch neither PostgreSQL nor Redis: the pipeline is built without them.
    pipe = Pipeline(cast(Any, None), cast(Any, None), registry, batch_max=10 * count)
    client = mqtt_client.MqttClient(Endpoint("localhost", 1883), _options(), pipe.submit)
    transport = _Transport()

    def receive_run() -> None:
        pipe._queue.clear()
        link = mqtt_client._Link(client)
        link.connection_made(transport)
        client.session.receive_data(b"\x20\x03\x00\x00\x00\x90\x04\x00\x01\x00\x01", 1.0)
        client.session.data_to_send()
        for c in chunks:
            link.data_received(c)
        assert len(pipe._queue) == count

    if "receive" in steps:
        figures["receive"] = best_cpu_us(receive_run, count, repeat)
    else:
        receive_run()
    messages = list(pipe._queue)
    batches = [messages[i : i + batch] for i in range(0, count, batch)]

    if "ack" in steps:

        def ack_run() -> None:
            before = transport.written
            for b in batches:
                mqtt_client.ack_all([m.ack for m in b if m.ack is not None])
            assert transport.written - before == 4 * count

        figures["ack"] = best_cpu_us(ack_run, count, repeat)

    if "decode" in steps:
        now = datetime.fromtimestamp(wall, UTC)

        def decode_run() -> None:
            for b in batches:
                pipe.decode(b, now)

        figures["decode"] = best_cpu_us(decode_run, count, repeat)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--read-bytes", type=int, default=32 * 1024, help="bytes per socket read")
    parser.add_argument("--batch", type=int, default=1_000, help="messages per acknowledged batch")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", default=",".join(STEPS))
    parser.add_argument("--baseline", help="a checkout (directory holding emon/) to measure interleaved")
    parser.add_argument("--once", action="store_true", help="one round, printed as JSON")
    args = parser.parse_args()
    steps = args.steps.split(",")

    def measure() -> dict[str, float]:
        return asyncio.run(one_round(args.messages, args.read_bytes, args.batch, args.repeat, steps))

    if args.once:
        print(json.dumps(measure()))
        return
    versions = ["current"] + (["baseline"] if args.baseline else [])
    results: dict[str, dict[str, list[float]]] = {v: {} for v in versions}
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for r in range(args.rounds):
        for v in versions if r % 2 == 0 else versions[::-1]:
            root = args.baseline if v == "baseline" else here
            argv = [a for a in sys.argv[1:] if not a.startswith("--baseline") and a != args.baseline]
            # ``root`` first on the path, so that its ``emon`` is the one imported.
            code = (
                f"import sys; sys.path[:0] = [{root!r}, {here!r}]; sys.argv = ['bench', *{argv!r}, '--once']; "
                "import emon; assert emon.__file__.startswith(sys.path[0]), emon.__file__; "
                "from benchmarks.mqtt_receive_bench import main; main()"
            )
            out = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=here
            ).stdout
            for step, value in json.loads(out).items():
                results[v].setdefault(step, []).append(value)
    print(
        f"CPU µs per message, best of {args.repeat} runs of {args.messages} messages, {args.rounds} rounds "
        f"(versions alternated); reads of {args.read_bytes} bytes, batches of {args.batch}"
    )
    for v, figures in results.items():
        for step, values in figures.items():
            print(
                f"{v:>9} {step:>8}: median {statistics.median(values):6.2f}"
                f"  min {min(values):6.2f}  max {max(values):6.2f}"
            )


if __name__ == "__main__":
    main()
