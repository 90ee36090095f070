"""What the ingest process and the main process say to each other (sans I/O): length-prefixed msgpack frames.

The ingest process (:mod:`emon.ingest.worker`) sends every stored batch (its new fixes and events, the
victim devices' acknowledgements, and the clocks the consumers need) and, twice a second, a report of
its progress and its metrics; the main process (:mod:`emon.ingest.process`) sends the settings first,
then every device registered after start, and says when the consumers have taken each batch. Fixes travel as plain arrays and are rebuilt with
:func:`~emon.fix.checked_fix`: they were validated when decoded, in the ingest process.
"""

from __future__ import annotations

import struct
from datetime import datetime
from typing import Any

import msgspec

from emon.device import Device, DeviceKind
from emon.fix import DeviceEvent, EventType, Fix, FixSource, checked_fix

MAX_FRAME = 256 * 1024 * 1024  # a batch of 1,000 fixes is ≈ 80 kB; anything near this is a bug
_LENGTH = struct.Struct(">I")

FixRow = tuple[
    str, datetime, float, float, float, int | None, float | None, FixSource | None, float | None, float | None
]
EventRow = tuple[str, datetime, EventType, dict[str, Any]]
DeviceRow = tuple[str, DeviceKind, str | None, int]


class Start(msgspec.Struct, tag="start", array_like=True):
    """Main → ingest, first: the settings (JSON of :class:`~emon.settings.Settings`, secrets included:
    a socket between the two processes, never the command line or the environment)."""

    settings: str


class Devices(msgspec.Struct, tag="devices", array_like=True):
    """Main → ingest: devices registered (or, with ``replace``, the whole registry)."""

    devices: list[DeviceRow]
    replace: bool = False


class Batch(msgspec.Struct, tag="batch", array_like=True):
    """Ingest → main: one committed (and acknowledged) batch, as :class:`~emon.ingest.pipeline.Stored`."""

    fixes: list[FixRow]
    events: list[EventRow]
    acks: list[tuple[str, bytes]]
    now: datetime
    received_mono: float  # CLOCK_MONOTONIC: one clock for every process of the machine
    stored_at: datetime


class Report(msgspec.Struct, tag="report", array_like=True):
    """Ingest → main: progress (as :class:`~emon.ingest.pipeline.Health`), MQTT, and the metrics text."""

    waiting: int
    oldest_wait_s: float
    since_commit_s: float
    stalled: bool
    connected: bool
    metrics: bytes


class Consumed(msgspec.Struct, tag="consumed", array_like=True):
    """Main → ingest: the oldest ``batches`` forwarded batches have been handed to the consumers (their
    evaluation has taken them): the ingest process's group commit waits for this, as it waits for
    the consumers in one process."""

    batches: int


Frame = Start | Devices | Batch | Report | Consumed

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Frame)


def encode(frame: Frame) -> bytes:
    """The frame with its 4-byte length in front."""
    body = _encoder.encode(frame)
    return _LENGTH.pack(len(body)) + body


def length(header: bytes) -> int:
    """The body length a 4-byte header announces (ValueError beyond :data:`MAX_FRAME`)."""
    (n,) = _LENGTH.unpack(header)
    if n > MAX_FRAME:
        raise ValueError(f"frame of {n} bytes announced: the other process is broken")
    return int(n)


HEADER = _LENGTH.size


def decode(body: bytes) -> Frame:
    frame: Frame = _decoder.decode(body)
    return frame


def fix_rows(fixes: list[Fix]) -> list[FixRow]:
    return [
        (f.device_id, f.ts, f.lat, f.lon, f.acc_m, f.seq, f.batt, f.src, f.speed_mps, f.heading_deg)
        for f in fixes
    ]


def fixes_of(rows: list[FixRow]) -> list[Fix]:
    """The fixes again, without checking them a second time (the ingest process did)."""
    return [checked_fix(*row) for row in rows]


def event_rows(events: list[DeviceEvent]) -> list[EventRow]:
    return [(e.device_id, e.ts, e.type, e.data) for e in events]


def events_of(rows: list[EventRow]) -> list[DeviceEvent]:
    return [DeviceEvent(*row) for row in rows]


def device_rows(devices: list[Device]) -> list[DeviceRow]:
    return [(d.device_id, d.kind, d.owntracks_topic, d.report_interval_s) for d in devices]


def devices_of(rows: list[DeviceRow]) -> list[Device]:
    return [Device(*row) for row in rows]
