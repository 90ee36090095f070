"""A scenario turned into a time-ordered stream of publish actions -- deterministic from the seed.

Pure: the start time is an argument and randomness comes from ``random.Random`` seeded with
``"{seed}:{device_id}"``, so the same scenario, seed, start and prefix give a byte-identical
stream. ``Action.at_s`` is in scenario seconds; the driver publishes it ``at_s / time_compression``
real seconds after the start, and every timestamp inside a payload is that same real moment
(``start + at_s / time_compression``): messages look live to emon, and the movement, not the
clock, is sped up (a walker at 20x covers 28 m per real second).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from simulators import topics
from simulators.movement import Track
from simulators.noise import read
from simulators.scenario import Battery, DeviceSpec, Scenario

ActionKind = Literal["fix", "batch", "event", "owntracks"]


@dataclass(frozen=True, slots=True)
class Action:
    """Publish ``payload`` on ``topic`` (QoS 1) at scenario second ``at_s`` as ``device_id``.

    A buffered upload keeps each fix's original ``ts`` but is published at the end of the gap."""

    at_s: float
    device_id: str
    topic: str
    payload: bytes
    kind: ActionKind


def encode(obj: Any) -> bytes:
    """Compact JSON, keys in insertion order (so payloads are byte-stable)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def rfc3339(ts: datetime) -> str:
    """``2026-01-01T12:00:00.000+00:00``: UTC with an explicit offset, millisecond precision."""
    return ts.astimezone(UTC).isoformat(timespec="milliseconds")


def wall_time(start: datetime, at_s: float, compression: float) -> datetime:
    """The real UTC moment at which scenario second ``at_s`` is played."""
    return start + timedelta(seconds=at_s / compression)


def _threshold_s(battery: Battery, pct: float) -> float | None:
    """Scenario second at which the level reaches ``pct`` percent, or None if it never does."""
    if battery.start_pct <= pct:
        return 0.0
    if battery.drain_pct_per_h <= 0:
        return None
    return (battery.start_pct - pct) / battery.drain_pct_per_h * 3600.0


def _battery_pct(battery: Battery, t: float) -> int:
    return max(0, round(battery.start_pct - battery.drain_pct_per_h * t / 3600.0))


def device_actions(
    spec: DeviceSpec, scenario: Scenario, *, start: datetime, prefix: str = ""
) -> list[Action]:
    """The ordered actions of one device over the scenario."""
    b = spec.behaviour
    comp = scenario.time_compression
    rng = random.Random(f"{scenario.seed}:{spec.device_id}")
    track = Track(b.route)
    interval = b.fix_interval_s or float(spec.report_interval_s)

    events: list[tuple[float, str, dict[str, Any]]] = [(e.at_s, e.type, dict(e.data)) for e in b.events]
    for kind, pct in (("battery_low", b.battery.low_pct), ("battery_critical", b.battery.critical_pct)):
        t_x = _threshold_s(b.battery, pct)
        if t_x is not None:
            events.append((t_x, kind, {"batt": round(pct)}))
    silent_at = scenario.duration_s if b.silent_from_s is None else min(b.silent_from_s, scenario.duration_s)
    t_off = _threshold_s(b.battery, 0.0)
    if t_off is not None and t_off < silent_at:
        events.append((t_off, "power_off", {"batt": 0}))
        silent_at = t_off + 1e-6  # power_off is the last word
    events = sorted(e for e in events if e[0] < silent_at)

    def gap_end(t: float) -> float | None:
        return next((g.end_s for g in b.gaps if g.start_s <= t < g.end_s), None)

    out: list[Action] = []
    buffered: dict[float, list[Action]] = {}

    def emit(action: Action) -> None:
        end = gap_end(action.at_s)
        if end is None:
            out.append(action)
        else:
            buffered.setdefault(end, []).append(action)

    seq = 0
    n = 0
    while (t := n * interval) < silent_at:
        n += 1
        pos = track.at(t)
        r = read(pos, b.noise, rng)
        ts = wall_time(start, t, comp)
        batt = _battery_pct(b.battery, t)
        if spec.owntracks_topic is not None:
            ot: dict[str, Any] = {
                "_type": "location",
                "tid": spec.device_id[-2:],
                "lat": round(r.lat, 7),
                "lon": round(r.lon, 7),
                "tst": int(ts.timestamp()),
                "acc": round(r.acc_m),
                "batt": batt,
                "vel": round(pos.speed_mps * comp * 3.6),
            }
            emit(
                Action(
                    t,
                    spec.device_id,
                    topics.owntracks_topic(spec.owntracks_topic, prefix),
                    encode(ot),
                    "owntracks",
                )
            )
            continue
        seq += 1
        fix: dict[str, Any] = {
            "ts": rfc3339(ts),
            "lat": round(r.lat, 7),
            "lon": round(r.lon, 7),
            "acc": r.acc_m,
            "seq": seq,
            "batt": batt,
            "src": r.src,
            "spd": round(pos.speed_mps * comp, 2),
        }
        if pos.speed_mps > 0:
            fix["hdg"] = round(pos.heading_deg, 1)
        emit(Action(t, spec.device_id, topics.fix_topic(spec.device_id, prefix), encode(fix), "fix"))
    for at_s, kind, data in events:
        payload = {"ts": rfc3339(wall_time(start, at_s, comp)), "type": kind, **data}
        emit(
            Action(at_s, spec.device_id, topics.event_topic(spec.device_id, prefix), encode(payload), "event")
        )

    return sorted([*_flush(buffered, spec.device_id, silent_at), *out], key=lambda a: a.at_s)


def _flush(buffered: dict[float, list[Action]], device_id: str, silent_at: float) -> list[Action]:
    """Buffered messages as sent when coverage returns: fixes as one JSON array, then the rest."""
    out: list[Action] = []
    for end, actions in sorted(buffered.items()):
        if end >= silent_at:
            continue  # the buffer never made it out
        fixes = sorted((a for a in actions if a.kind == "fix"), key=lambda a: a.at_s)
        if fixes:
            body = b"[" + b",".join(a.payload for a in fixes) + b"]"
            out.append(Action(end, device_id, fixes[0].topic, body, "batch"))
        # OwnTracks queues and sends one message at a time; events follow the batch.
        rest = sorted((a for a in actions if a.kind != "fix"), key=lambda a: a.at_s)
        out.extend(replace(a, at_s=end) for a in rest)
    return out


def build_actions(scenario: Scenario, *, start: datetime, prefix: str = "") -> list[Action]:
    """All devices' actions merged in time order (ties: device order in the scenario file)."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    merged = [
        (a.at_s, i, j, a)
        for i, spec in enumerate(scenario.devices)
        for j, a in enumerate(device_actions(spec, scenario, start=start, prefix=prefix))
    ]
    merged.sort(key=lambda row: row[:3])
    return [row[3] for row in merged]


def will_payload(spec: DeviceSpec, prefix: str = "") -> tuple[str, bytes]:
    """The MQTT last will of a device: (topic, payload)."""
    if spec.owntracks_topic is not None:
        return topics.owntracks_topic(spec.owntracks_topic, prefix), encode({"_type": "lwt"})
    return topics.event_topic(spec.device_id, prefix), encode({"type": "connection_lost"})


def ack_payload(notify: bytes, now: datetime) -> bytes | None:
    """The acknowledgement a victim device sends for a notify message, or None if it is malformed."""
    try:
        msg = json.loads(notify)
    except ValueError:
        return None
    if not isinstance(msg, dict):
        return None
    nid, aid = msg.get("notification_id"), msg.get("alert_id")
    if not isinstance(nid, str) or not isinstance(aid, str):
        return None
    return encode({"notification_id": nid, "alert_id": aid, "ts": rfc3339(now)})


REPLY_SEQ_BASE = 1_000_000_000  # seq of fixes sent in answer to a command: never collides with the script's


def command_reply(
    spec: DeviceSpec, scenario: Scenario, *, at_s: float, ts: datetime, seq: int, prefix: str = ""
) -> Action:
    """The fix a device publishes when emon asks for one (``emon/v1/cmd`` locate, or OwnTracks
    ``reportLocation``): where it truly is at scenario second ``at_s``, measured at real time ``ts``,
    with the scenario's noise. Deterministic from (seed, device, seq)."""
    b = spec.behaviour
    rng = random.Random(f"{scenario.seed}:{spec.device_id}:reply:{seq}")
    pos = Track(b.route).at(at_s)
    r = read(pos, b.noise, rng)
    batt = _battery_pct(b.battery, at_s)
    if spec.owntracks_topic is not None:
        ot: dict[str, Any] = {
            "_type": "location",
            "tid": spec.device_id[-2:],
            "lat": round(r.lat, 7),
            "lon": round(r.lon, 7),
            "tst": int(ts.timestamp()),
            "acc": round(r.acc_m),
            "batt": batt,
            "t": "r",
        }  # OwnTracks marks a reply to reportLocation with t=r
        return Action(
            at_s,
            spec.device_id,
            topics.owntracks_topic(spec.owntracks_topic, prefix),
            encode(ot),
            "owntracks",
        )
    fix = {
        "ts": rfc3339(ts),
        "lat": round(r.lat, 7),
        "lon": round(r.lon, 7),
        "acc": r.acc_m,
        "seq": REPLY_SEQ_BASE + seq,
        "batt": batt,
        "src": r.src,
    }
    return Action(at_s, spec.device_id, topics.fix_topic(spec.device_id, prefix), encode(fix), "fix")


@dataclass(frozen=True, slots=True)
class Obey:
    """What a device does with one command: report once now, and (pursuit) every ``every_s`` real
    seconds until ``until``; ``stop`` ends a running pursuit (OwnTracks back to its usual mode)."""

    report_now: bool = False
    every_s: float | None = None
    until: datetime | None = None
    stop: bool = False


def obey(payload: bytes, owntracks: bool) -> Obey | None:
    """Read a command as the device contract defines it (docs/device-contract.md); None if it is not one."""
    try:
        msg = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(msg, dict):
        return None
    if owntracks:
        if msg.get("_type") != "cmd":
            return None
        if msg.get("action") == "reportLocation":
            return Obey(report_now=True)
        config = msg.get("configuration")
        if msg.get("action") == "setConfiguration" and isinstance(config, dict):
            if config.get("monitoring") == 2:
                every = config.get("locatorInterval")
                return Obey(every_s=float(every) if isinstance(every, int | float) and every > 0 else 30.0)
            return Obey(stop=True)
        return None
    if msg.get("cmd") != "locate":
        return None
    every, until = msg.get("every_s"), msg.get("until")
    if isinstance(every, int | float) and every > 0 and isinstance(until, str):
        try:
            end = datetime.fromisoformat(until.replace("Z", "+00:00"))
        except ValueError:
            return Obey(report_now=True)
        return Obey(report_now=True, every_s=float(every), until=end)
    return Obey(report_now=True)
