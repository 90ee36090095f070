"""Registered devices: offender ankle tags and victim devices."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from emon.errors import InvalidInput

DEVICE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


class DeviceKind(StrEnum):
    ANKLE_TAG = "ankle_tag"
    VICTIM_DEVICE = "victim_device"


def check_device_id(device_id: str) -> str:
    """Return ``device_id`` if it is a safe identifier (also used as an MQTT topic level)."""
    if not DEVICE_ID_RE.match(device_id):
        raise InvalidInput(f"device_id {device_id[:80]!r} must match {DEVICE_ID_RE.pattern}")
    return device_id


@dataclass(frozen=True, slots=True)
class Device:
    """A registered device. ``report_interval_s`` is how often it is expected to report (seconds)."""

    device_id: str
    kind: DeviceKind
    owntracks_topic: str | None = None
    report_interval_s: int = 60

    def __post_init__(self) -> None:
        check_device_id(self.device_id)
        if not 1 <= self.report_interval_s <= 86_400:
            raise InvalidInput("report_interval_s must be between 1 and 86400 seconds")
        if self.owntracks_topic is not None and not re.match(
            r"^owntracks/[^/+#]+/[^/+#]+$", self.owntracks_topic
        ):
            raise InvalidInput("owntracks_topic must look like owntracks/{user}/{device}")


class DeviceRegistry:
    """Registered devices by id and by OwnTracks topic; messages from others are rejected."""

    def __init__(self, devices: list[Device] | None = None) -> None:
        self.by_id: dict[str, Device] = {}
        self.by_owntracks: dict[str, str] = {}
        for d in devices or []:
            self.add(d)

    def add(self, device: Device) -> None:
        self.by_id[device.device_id] = device
        if device.owntracks_topic:
            self.by_owntracks[device.owntracks_topic] = device.device_id

    def replace_all(self, devices: list[Device]) -> None:
        self.by_id.clear()
        self.by_owntracks.clear()
        for d in devices:
            self.add(d)

    def __contains__(self, device_id: object) -> bool:
        return device_id in self.by_id
