"""CPU per message of decoding device messages (issue #14): prints figures, is not a test.

Batches of 1,000 fix messages exactly as ``benchmarks/e2e_publisher.py`` sends them (one fix per
message, 200 devices) go through ``Pipeline.decode``, the way the ingest loop decodes a batch; CPU time
(``time.process_time``), not wall time, because the machine's cores are shared. OwnTracks location
messages are measured too (``decode_owntracks`` directly).

``--baseline path/to/decode.py`` loads another version of ``emon/ingest/decode.py`` (a copy of an
older one, kept outside the repository) and measures it interleaved with the current one, round by
round, so both see the same machine load::

    python -m benchmarks.decode_bench --baseline /tmp/old_decode.py --rounds 15
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from types import ModuleType
from typing import Any, cast

from emon.device import Device, DeviceKind, DeviceRegistry
from emon.ingest import decode as current_decode
from emon.ingest import pipeline as pipeline_module
from emon.ingest.pipeline import Pipeline, RawMessage
from simulators import topics
from simulators.load import _heads, bench_device_id

DEVICES = 200
BATCH = 1_000


def fix_batch(now: float) -> list[RawMessage]:
    """1,000 messages as the e2e publisher writes them: one fix each, ``ts`` the publish time."""
    heads = _heads(0, DEVICES)
    names = [topics.fix_topic(bench_device_id(i), "") for i in range(DEVICES)]
    stamp = b'"ts":%.3f}' % now
    return [
        RawMessage(names[n % DEVICES], heads[n % DEVICES] + b"%d," % (n // DEVICES + 1) + stamp, now, 0.0)
        for n in range(BATCH)
    ]


def owntracks_payloads(now: float) -> list[bytes]:
    """1,000 OwnTracks ``location`` messages with the fields the app sends by default."""
    return [
        b'{"_type":"location","acc":%d,"alt":4,"batt":%d,"bs":1,"conn":"m","created_at":%d,"lat":%.6f,'
        b'"lon":%.6f,"tid":"vp","tst":%d,"vac":3,"vel":%d,"cog":%d}'
        % (5 + n % 30, 30 + n % 70, now, 52.09 + n * 1e-5, 5.12 + n * 1e-5, now - n % 60, n % 50, n % 360)
        for n in range(BATCH)
    ]


def load_baseline(path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location("decode_baseline", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@contextmanager
def decoder(module: ModuleType) -> Iterator[None]:
    """Make the pipeline decode with ``module``'s functions while the block runs."""
    names = [
        n
        for n in ("decode_fixes", "decode_event", "decode_owntracks", "fix_message")
        if hasattr(pipeline_module, n)
    ]
    saved = {n: getattr(pipeline_module, n) for n in names}
    try:
        for n in names:
            # An older decode.py without fix_message: its decode_fixes, whose Decoded the pipeline takes
            # through the general path.
            setattr(pipeline_module, n, getattr(module, n, module.decode_fixes))
        yield
    finally:
        for n, f in saved.items():
            setattr(pipeline_module, n, f)


def cpu_us_per_message(run: Callable[[], object], messages: int, repeat: int = 5) -> float:
    """The lowest CPU µs per message of ``repeat`` runs (the least disturbed by other processes)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        run()
        best = min(best, time.process_time() - t0)
    return best * 1e6 / messages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help="another decode.py to measure interleaved with the current one")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    registry = DeviceRegistry(
        [Device(bench_device_id(i), DeviceKind.ANKLE_TAG) for i in range(DEVICES)]
        + [Device("phone-1", DeviceKind.VICTIM_DEVICE, "owntracks/anna/phone")]
    )
    # decode() touches neither PostgreSQL nor Redis: the pipeline is built without them.
    pipe = Pipeline(cast(Any, None), cast(Any, None), registry)
    wall = time.time()
    now = datetime.fromtimestamp(wall, UTC)
    batch = fix_batch(wall)
    owntracks = owntracks_payloads(wall)
    upload = b"[" + b",".join(m.payload for m in batch) + b"]"  # a tag's buffer: 1,000 fixes, one message
    versions = {"current": current_decode}
    if args.baseline:
        versions = {"baseline": load_baseline(args.baseline), **versions}
    for module in versions.values():  # same outcome from every version before anything is timed
        with decoder(module):
            parts, _, _ = pipe.decode(batch, now)
        assert sum(len(p.fixes) for p in parts) == BATCH and not any(p.dead for p in parts)
        up = module.decode_fixes("t", "bench-000000", upload, now, pipe.limits)
        assert len(up.fixes) == BATCH and not up.dead
        out = [
            module.decode_owntracks("owntracks/anna/phone", "phone-1", p, now, pipe.limits) for p in owntracks
        ]
        assert all(len(o.fixes) == 1 and not o.dead for o in out)
    figures: dict[str, dict[str, list[float]]] = {
        v: {"pipeline": [], "fix": [], "upload": [], "owntracks": []} for v in versions
    }
    for _ in range(args.rounds):
        for name, module in versions.items():
            with decoder(module):
                figures[name]["pipeline"].append(cpu_us_per_message(lambda: pipe.decode(batch, now), BATCH))

            def fix_run(m: ModuleType = module) -> None:
                for msg in batch:
                    m.decode_fixes(msg.topic, "bench-000000", msg.payload, now, pipe.limits)

            def upload_run(m: ModuleType = module) -> None:
                m.decode_fixes("emon/v1/fix/bench-000000", "bench-000000", upload, now, pipe.limits)

            figures[name]["fix"].append(cpu_us_per_message(fix_run, BATCH))
            figures[name]["upload"].append(cpu_us_per_message(upload_run, BATCH))

            def owntracks_run(m: ModuleType = module) -> None:
                for p in owntracks:
                    m.decode_owntracks("owntracks/anna/phone", "phone-1", p, now, pipe.limits)

            figures[name]["owntracks"].append(cpu_us_per_message(owntracks_run, BATCH))
    print(
        f"CPU µs per message (upload: per fix), best of 5 runs of {BATCH}, {args.rounds} interleaved rounds;\n"
        "pipeline: Pipeline.decode of the batch; fix: decode_fixes alone; upload: one message of all "
        "1,000 fixes; owntracks: decode_owntracks"
    )
    for name, kinds in figures.items():
        for kind, values in kinds.items():
            print(
                f"{name:>9} {kind:>9}: median {statistics.median(values):6.2f}"
                f"  min {min(values):6.2f}  max {max(values):6.2f}"
            )


if __name__ == "__main__":
    main()
