"""Locate now / pursuit mode: which command bytes go to which device topic (pure).

A command asks a device for fresh fixes and says nothing else: no reason, no position, no distance,
no case (a tag asked for a fix learns nothing about the victim). Two forms (docs/device-contract.md):

* emon devices: ``emon/v1/cmd/{device_id}`` with ``{"command_id", "cmd": "locate", "ts"}`` plus, in
  pursuit mode, ``"every_s"`` (report every N seconds) and ``"until"`` (RFC 3339 UTC).
* OwnTracks phones: the app's own remote commands on ``owntracks/{user}/{device}/cmd``:
  ``{"_type": "cmd", "action": "reportLocation"}``; in pursuit mode also ``setConfiguration`` into move
  mode (``monitoring: 2``) now and back to significant-changes mode (``monitoring: 1``) at ``until``.

The reason is kept in the outbox row's record (``msg_type`` and history), never in the bytes sent.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from emon.alerts.model import uuid5_text
from emon.device import Device

_NAMESPACE = uuid.UUID("0c5a7f2e-9d3b-4e61-8b0a-636d646c6f63")  # fixed forever: ids must not change
MOVE_MODE = 2  # OwnTracks "monitoring": 2 = move mode (frequent fixes)
SIGNIFICANT_MODE = 1  # OwnTracks "monitoring": 1 = significant changes (the app's usual mode)


@dataclass(frozen=True, slots=True)
class LocateRequest:
    """Ask ``devices`` of a case for a fresh fix now and, if ``every_s`` is set, every ``every_s``
    seconds until ``until`` (UTC). ``origin`` identifies what asked (an alert, an evaluation event),
    so deciding the same request twice queues nothing new; ``reason`` is recorded, never sent."""

    case_id: str
    devices: tuple[str, ...]
    reason: str
    origin: str
    every_s: int | None = None
    until: datetime | None = None
    alert_id: str | None = None  # the alert that asked, if any (its detail then lists the commands)

    @property
    def pursuit(self) -> bool:
        return bool(self.every_s) and self.until is not None


@dataclass(frozen=True, slots=True)
class Command:
    """One command as an outbox row: ``topic`` is without the deployment prefix; ``not_before`` is when
    it may be sent (a pursuit's end is queued for its ``until``); ``kind`` is recorded as ``msg_type``."""

    command_id: str
    case_id: str
    device_id: str
    topic: str
    body: bytes
    kind: str
    not_before: datetime


def command_id_for(origin: str, device_id: str, kind: str) -> str:
    return uuid5_text(_NAMESPACE, f"{origin}|{device_id}|{kind}")


def cmd_topic(device: Device) -> str:
    """The command topic of a device (without prefix)."""
    if device.owntracks_topic:
        return f"{device.owntracks_topic}/cmd"
    return f"emon/v1/cmd/{device.device_id}"


def _encode(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _utc(ts: datetime) -> str:
    return ts.isoformat(timespec="seconds").replace("+00:00", "Z")


def commands_for(request: LocateRequest, devices: dict[str, Device], now: datetime) -> list[Command]:
    """The commands that carry ``request`` to each of its registered devices (unknown ones are skipped)."""
    out: list[Command] = []
    pursuit = request.pursuit and request.until is not None and request.until > now
    for device_id in dict.fromkeys(request.devices):
        device = devices.get(device_id)
        if device is None:
            continue
        topic = cmd_topic(device)

        def cmd(
            kind: str,
            body: dict[str, Any],
            at: datetime = now,
            device_id: str = device_id,
            topic: str = topic,
        ) -> Command:
            cid = command_id_for(request.origin, device_id, kind)
            return Command(cid, request.case_id, device_id, topic, _encode(body), kind, at)

        if device.owntracks_topic:
            out.append(cmd("owntracks_report", {"_type": "cmd", "action": "reportLocation"}))
            if pursuit and request.until is not None and request.every_s:
                move = {
                    "_type": "configuration",
                    "monitoring": MOVE_MODE,
                    "locatorInterval": request.every_s,
                    "moveModeLocatorInterval": request.every_s,
                }
                out.append(
                    cmd(
                        "owntracks_move",
                        {"_type": "cmd", "action": "setConfiguration", "configuration": move},
                    )
                )
                back = {"_type": "configuration", "monitoring": SIGNIFICANT_MODE}
                out.append(
                    cmd(
                        "owntracks_restore",
                        {"_type": "cmd", "action": "setConfiguration", "configuration": back},
                        request.until,
                    )
                )
            continue
        body: dict[str, Any] = {
            "command_id": command_id_for(request.origin, device_id, "locate"),
            "cmd": "locate",
            "ts": _utc(now),
        }
        if pursuit and request.until is not None and request.every_s:
            body["every_s"] = int(request.every_s)
            body["until"] = _utc(request.until)
        out.append(cmd("locate", body))
    return out


def pursuit_until(now: datetime, pursuit_s: float) -> datetime:
    return now + timedelta(seconds=pursuit_s)
