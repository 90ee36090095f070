"""The scenario file: a case, its devices, what each device does, and which alerts must follow.

All times are *scenario seconds* counted from the scenario start (``at_s``, ``pause_s``, ``within_s``);
all distances are metres; positions are WGS84 degrees. A scenario is played ``time_compression``
times faster than real time (see docs/simulators.md, "Time").
"""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Self
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator, model_validator

from emon.alerts.types import AlertType, Recipient
from emon.case import Case
from emon.device import DEVICE_ID_RE, DeviceKind
from emon.errors import InvalidOrder
from emon.order import Strict, parse_model

SCENARIO_DIR = Path(__file__).parent / "scenarios"


Mode = Literal["walk", "cycle", "drive"]
Environment = Literal["open", "urban", "indoor"]
EventKind = Literal[
    "tamper", "strap_open", "strap_closed", "battery_low", "battery_critical", "power_off", "panic"
]


class Waypoint(Strict):
    """A point on a route. The leg *towards* this point uses ``mode`` (or the route's mode) and
    ``env`` (which also applies while pausing here for ``pause_s`` seconds)."""

    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)
    pause_s: float = Field(default=0, ge=0)
    mode: Mode | None = None
    speed_mps: float | None = Field(default=None, gt=0, le=60)
    env: Environment = "open"


class Route(Strict):
    """Waypoints visited in order; the device waits at the first one until ``start_s``."""

    mode: Mode = "walk"
    start_s: float = Field(default=0, ge=0)
    waypoints: tuple[Waypoint, ...] = Field(min_length=1)


class Noise(Strict):
    """GPS error model: the reported ``acc`` (metres, 68 % radius) per environment, and the chance
    per fix of a wild outlier ``outlier_min_m..outlier_max_m`` metres off that still reports a good
    ``acc``."""

    open_acc_m: float = Field(default=6, gt=0)
    urban_acc_m: float = Field(default=20, gt=0)
    indoor_acc_m: float = Field(default=45, gt=0)
    outlier_rate: float = Field(default=0, ge=0, le=1)
    outlier_min_m: float = Field(default=500, ge=0)
    outlier_max_m: float = Field(default=5000, ge=0)


class Gap(Strict):
    """No coverage from ``start_s`` to ``end_s``: fixes are buffered and uploaded in one batch
    (a JSON array) at ``end_s``."""

    start_s: float = Field(ge=0)
    end_s: float

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end_s <= self.start_s:
            raise ValueError("end_s must be after start_s")
        return self


class ScriptedEvent(Strict):
    """A device event published at scenario second ``at_s``; ``data`` is merged into the payload."""

    at_s: float = Field(ge=0)
    type: EventKind
    data: dict[str, Any] = Field(default_factory=dict)


class Battery(Strict):
    """Battery level in percent, draining linearly in scenario time; ``battery_low`` and
    ``battery_critical`` events fire once when the level falls to the thresholds, ``power_off``
    (and silence) at 0 %."""

    start_pct: float = Field(default=90, ge=0, le=100)
    drain_pct_per_h: float = Field(default=1.5, ge=0)
    low_pct: float = Field(default=20, ge=0, le=100)
    critical_pct: float = Field(default=5, ge=0, le=100)


class Ack(Strict):
    """How a victim device answers a warning: after ``delay_s`` scenario seconds, or never (null)."""

    delay_s: float | None = Field(default=5, ge=0)


class Behaviour(Strict):
    """What one device does during the scenario. ``fix_interval_s`` defaults to the device's
    ``report_interval_s``; ``silent_from_s`` stops all messages (the connection stays up)."""

    route: Route
    noise: Noise = Noise()
    fix_interval_s: float | None = Field(default=None, gt=0)
    gaps: tuple[Gap, ...] = ()
    events: tuple[ScriptedEvent, ...] = ()
    battery: Battery = Battery()
    silent_from_s: float | None = Field(default=None, ge=0)
    ack: Ack = Ack()


class DeviceSpec(Strict):
    """A simulated device; registered with emon as ``{device_id, kind, owntracks_topic?, report_interval_s}``
    (``report_interval_s`` in scenario seconds, divided by the compression when registering)."""

    device_id: str
    kind: DeviceKind
    owntracks_topic: str | None = Field(default=None, pattern=r"^owntracks/[^/+#]+/[^/+#]+$")
    report_interval_s: int = Field(default=60, ge=1, le=86_400)
    behaviour: Behaviour

    @field_validator("device_id")
    @classmethod
    def _safe_id(cls, value: str) -> str:
        if not DEVICE_ID_RE.match(value):
            raise ValueError(f"must match {DEVICE_ID_RE.pattern}")
        return value


class Expectation(Strict):
    """An alert of ``type`` for ``recipient`` must open within ``within_s`` scenario seconds."""

    type: AlertType
    recipient: Recipient
    within_s: float = Field(gt=0)


class Scenario(Strict):
    """One scenario file. ``case`` is the emon case document, posted as written."""

    name: str = Field(pattern=r"^[a-z0-9_]+$")
    description: str
    seed: int = 0
    duration_s: float = Field(gt=0)
    time_compression: float = Field(default=1, ge=1, le=1000)
    case: dict[str, Any]
    devices: tuple[DeviceSpec, ...] = Field(min_length=1)
    expect: tuple[Expectation, ...] = ()
    expect_none_of: tuple[AlertType, ...] = ()
    schedule_anchor_s: float | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        try:
            case = parse_model(Case, self.case, where="case")
        except InvalidOrder as exc:
            raise ValueError(str(exc)) from exc
        kinds = {d.device_id: d.kind for d in self.devices}
        if len(kinds) != len(self.devices):
            raise ValueError("device ids must be unique")
        if kinds.get(case.offender_device) is not DeviceKind.ANKLE_TAG:
            raise ValueError(f"offender_device {case.offender_device!r} must be an ankle_tag in devices")
        if case.victim_device is not None and kinds.get(case.victim_device) is not DeviceKind.VICTIM_DEVICE:
            raise ValueError(f"victim_device {case.victim_device!r} must be a victim_device in devices")
        clash = {e.type for e in self.expect} & set(self.expect_none_of)
        if clash:
            raise ValueError(f"alert types both expected and forbidden: {sorted(clash)}")
        return self

    @property
    def case_id(self) -> str:
        return str(self.case["case_id"])

    @property
    def wall_duration_s(self) -> float:
        """How long playing the device messages takes, in real seconds."""
        return self.duration_s / self.time_compression


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A scenario by library name (``approach_victim``) or by file path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = SCENARIO_DIR / f"{name_or_path}.json"
    return Scenario.model_validate(json.loads(path.read_text(encoding="utf-8")))


def library() -> list[str]:
    """Names of the scenarios shipped in simulators/scenarios, sorted."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.json"))


def anchored_case(scenario: Scenario, start: datetime) -> dict[str, Any]:
    """The case document to register for a run starting at real UTC ``start``.

    With ``schedule_anchor_s`` set, every zone schedule is moved so that its first window opens at
    the run's ``start + schedule_anchor_s / time_compression`` (floored to the minute, in the
    schedule's time zone), keeping each window's length -- a curfew scenario needs its window *now*.
    """
    if scenario.schedule_anchor_s is None:
        return scenario.case
    opens = start + timedelta(seconds=scenario.schedule_anchor_s / scenario.time_compression)
    case = copy.deepcopy(scenario.case)
    order = case.get("order", {})
    for zone in (*order.get("exclusion_zones", ()), *order.get("inclusion_zones", ())):
        sched = zone.get("schedule")
        if not sched:
            continue
        local = opens.astimezone(ZoneInfo(sched.get("timezone", "Europe/Amsterdam")))
        first = sched["windows"][0]
        length = _minutes(first["end"]) - _minutes(first["start"])
        length = length if length > 0 else length + 24 * 60
        begin = local.hour * 60 + local.minute
        end = (begin + length) % (24 * 60)
        day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[local.weekday()]
        sched["windows"] = [{"days": [day], "start": _hhmm(begin), "end": _hhmm(end)}]
    return case


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")[:2]
    return int(h) * 60 + int(m)


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
