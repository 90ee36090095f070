"""Safety benchmark: what people receive under realistic GPS noise (not a test).

    .venv/bin/python -m benchmarks.safety [--days 300] [--runs 100] [--seed 1] [--families a,b] [--json]

Drives the real evaluation core (:class:`emon.geofence.Engine`) and the real alert lifecycle and
routing (:mod:`emon.alerts.lifecycle`, pure, in process) with the person-days of
:mod:`benchmarks.safety_families`, fixes arriving as they would (late uploads late), a tick every
30 s. Judged at the alerts a person receives — each alert with the type it finally has:

* missed violations (target 0): a true violation without a breach-type alert of its rule that
  a person receives (a pre-alert the system resolved on its own does not count);
* false breach-type alerts per 100 person-days (target ≤ 1), and how many reached victim/police;
* pre-alerts, possible states and unknown states per 100 person-days; decision latency.

Seeds: ``--seed`` 1–3 were used while tuning; report others as held out (see docs/safety.md).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from benchmarks.safety_families import COMPLIANT, FRAME, VIOLATIONS, PersonDay, Violation
from benchmarks.safety_tracks import Sampler
from emon.alerts.config import AlertConfig
from emon.alerts.lifecycle import on_evaluation
from emon.alerts.model import Alert, CaseInfo, alert_id_for
from emon.alerts.routing import Routing
from emon.alerts.types import AlertState, Recipient
from emon.fix import Fix
from emon.geofence import Engine
from emon.geofence.events import EvalEvent

STEP_S = 30.0
BREACH_TYPES = frozenset(
    {
        "exclusion_breach",
        "inclusion_breach",
        "proximity_breach",
        "crossing_suspected",
        "retrospective_violation",
    }
)
PRE_TYPES = frozenset({"exclusion_pre_alert", "proximity_pre_alert"})
POSSIBLE_TYPES = frozenset({"possible_breach"})
UNKNOWN_TYPES = frozenset({"proximity_unknown"})
# What counts as reporting a violation of each kind (the final type of the alert people see).
DETECTS = {
    "exclusion": BREACH_TYPES - {"inclusion_breach", "proximity_breach"},
    "inclusion": frozenset({"inclusion_breach", "retrospective_violation"}),
    "proximity": frozenset({"proximity_breach", "retrospective_violation"}),
}


@dataclass(slots=True)
class Received:
    """One alert as people finally see it."""

    alert: Alert
    notified: set[Recipient] = field(default_factory=set)


@dataclass(slots=True)
class Outcome:
    family: str
    truth: list[Violation]
    alerts: list[Received]
    events: Counter[str]
    fixes: int
    locate_requests: int = 0


class Pursuit:
    """Devices that obey LOCATE_REQUEST: a fix 5–20 s after the request, then every ``every_s``
    until ``until`` — with the same noise — unless the device is offline (muted) then."""

    def __init__(self, pd: PersonDay, rng: np.random.Generator) -> None:
        self.pd, self.rng = pd, rng
        self.samplers = {dev: Sampler(track) for dev, track in pd.tracks.items()}
        self.until: dict[str, float] = {}
        self.next_t: dict[str, float] = {}
        self.requests = 0
        self.fixes = 0
        self.every = 15.0

    def obey(self, events: list[EvalEvent], now: datetime) -> None:
        for ev in events:
            if ev.type.value != "locate_request":  # by value: the benchmark also runs on older code
                continue
            self.requests += 1
            until = (datetime.fromisoformat(ev.detail["until"]) - self.pd.t0).total_seconds()
            t_now = (now - self.pd.t0).total_seconds()
            for dev in ev.detail["devices"]:
                if dev not in self.pd.tracks:
                    continue
                if self.until.get(dev, -1.0) < t_now:
                    self.next_t[dev] = t_now + float(self.rng.uniform(5, 20))
                self.until[dev] = max(self.until.get(dev, -1.0), until)
                self.every = float(ev.detail["every_s"])

    def due(self, now: datetime) -> list[Fix]:
        t_now = (now - self.pd.t0).total_seconds()
        todo: list[tuple[str, float, float, float, float]] = []
        for dev, until in self.until.items():
            end = self.pd.tracks[dev].now_s
            while self.next_t.get(dev, 1e18) <= min(t_now, until):
                t = self.next_t[dev]
                self.next_t[dev] = t + self.every
                if t > end or any(a <= t < b for a, b in self.pd.mute.get(dev, ())):
                    continue
                todo.append((dev, t, *self.samplers[dev].one(t, self.rng)))
        if not todo:
            return []
        lat, lon = FRAME.latlon(np.array([d[2] for d in todo]), np.array([d[3] for d in todo]))
        out = [
            Fix(dev, self.pd.t0 + timedelta(seconds=t), float(lat[i]), float(lon[i]), acc)
            for i, (dev, t, _, _, acc) in enumerate(todo)
        ]
        self.fixes += len(out)
        return out


def run_day(pd: PersonDay, routing: Routing, config: AlertConfig, rng: np.random.Generator) -> Outcome:
    """Feed one person-day through engine + lifecycle; return the alerts as finally received."""
    engine = Engine()
    engine.add_case(pd.case)
    info = CaseInfo(pd.case.case_id, pd.case.risk, pd.case.offender_device, pd.case.victim_device)
    fixes = sorted(pd.fixes, key=lambda af: (af[0], af[1].ts))
    alerts: dict[str, Received] = {}
    counts: Counter[str] = Counter()
    i = 0
    now = pd.t0
    step = timedelta(seconds=STEP_S)

    def apply(events: list[EvalEvent], at: datetime) -> None:
        for ev in events:
            counts[ev.type.value] += 1
            aid = alert_id_for(ev.case_id, ev.rule, ev.episode)
            prev = alerts.get(aid)
            change = on_evaluation(
                prev.alert if prev else None, ev, info, routing, config, suppressed=False, now=at
            )
            if change is None:
                continue
            rec = prev or Received(change.alert)
            rec.alert = change.alert
            rec.notified |= set(change.notify)
            alerts[aid] = rec

    pursuit = Pursuit(pd, rng)
    while now < pd.end:
        now = now + step
        batch = []
        while i < len(fixes) and fixes[i][0] <= now:
            batch.append(fixes[i][1])
            i += 1
        batch += pursuit.due(now)
        if batch:
            events = engine.evaluate_batch(batch, now)
            pursuit.obey(events, now)
            apply(events, now)
        events = engine.tick(now)
        pursuit.obey(events, now)
        apply(events, now)
    return Outcome(
        pd.family, pd.truth, list(alerts.values()), counts, len(fixes) + pursuit.fixes, pursuit.requests
    )


def _kind(alert: Alert) -> str:
    return alert.rule.split(":", 1)[0]


def _received(r: Received) -> bool:
    """Did a person get this alert as a breach (not a pre-alert the system resolved itself)?"""
    return r.alert.type.value in BREACH_TYPES and not (
        r.alert.state is AlertState.RESOLVED and r.alert.resolved_by == "system"
    )


def _matches(r: Received, v: Violation, *, unknown_ok: bool = False) -> bool:
    types = DETECTS[v.kind] | (UNKNOWN_TYPES | POSSIBLE_TYPES if unknown_ok else frozenset())
    if _kind(r.alert) != v.kind or r.alert.type.value not in types:
        return False
    if r.alert.type.value in BREACH_TYPES and not _received(r):
        return False
    slack = timedelta(minutes=15)
    if r.alert.type.value in UNKNOWN_TYPES | POSSIBLE_TYPES:
        # An unknown or possible state reports the violation if it was open while it happened.
        return r.alert.opened_at <= v.end + slack and (
            r.alert.ended_at is None or r.alert.ended_at >= v.start
        )
    return (
        v.start - slack <= r.alert.episode <= v.end + slack or v.start <= r.alert.opened_at <= v.end + slack
    )


def score(outcomes: list[Outcome], *, unknown_ok: bool = False) -> dict[str, Any]:
    """The figures of one family or violation set."""
    days = len(outcomes)
    n_viol = missed = false = false_vp = pre = possible = unknown = 0
    latency: list[float] = []
    missed_how: Counter[str] = Counter()
    types: Counter[str] = Counter()
    for o in outcomes:
        used: set[int] = set()
        for v in o.truth:
            n_viol += 1
            hits = [k for k, r in enumerate(o.alerts) if _matches(r, v, unknown_ok=unknown_ok)]
            if not hits:
                missed += 1
                missed_how[v.how] += 1
                continue
            used |= set(hits)
            first = min(o.alerts[k].alert.opened_at for k in hits)
            latency.append(max(0.0, (first - v.start).total_seconds()))
        for k, r in enumerate(o.alerts):
            t = r.alert.type.value
            types[t] += 1
            if t in PRE_TYPES:
                pre += 1
            elif t in POSSIBLE_TYPES:
                possible += 1
            elif t in UNKNOWN_TYPES:
                unknown += 1
            if k not in used and _received(r):
                false += 1
                if r.notified & {Recipient.VICTIM, Recipient.POLICE}:
                    false_vp += 1
    per100 = 100.0 / max(days, 1)
    return {
        "person_days": days,
        "fixes": sum(o.fixes for o in outcomes),
        "locate_requests_per_day": round(sum(o.locate_requests for o in outcomes) / max(days, 1), 1),
        "violations": n_viol,
        "missed": missed,
        "missed_by_how": dict(missed_how),
        "false_breach_alerts": false,
        "false_per_100_days": round(false * per100, 2),
        "false_to_victim_or_police_per_100_days": round(false_vp * per100, 2),
        "pre_alerts_per_100_days": round(pre * per100, 1),
        "possible_per_100_days": round(possible * per100, 1),
        "unknown_per_100_days": round(unknown * per100, 1),
        "latency_s_median": round(statistics.median(latency), 1) if latency else None,
        "latency_s_p95": round(float(np.percentile(latency, 95)), 1) if latency else None,
        "alert_types": dict(types),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, default=300, help="person-days per compliant family")
    ap.add_argument("--runs", type=int, default=100, help="runs per violation set")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--families", default="", help="comma-separated subset of families/sets")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    routing, config = Routing(), AlertConfig()
    chosen = set(filter(None, args.families.split(",")))
    report: dict[str, Any] = {"seed": args.seed}
    t_start = time.perf_counter()
    for sets, n in ((COMPLIANT, args.days), (VIOLATIONS, args.runs)):
        for name, build in sets.items():
            if chosen and name not in chosen:
                continue
            t = time.perf_counter()
            rng = np.random.default_rng([args.seed, zlib.crc32(name.encode())])
            outs = [run_day(build(i, rng), routing, config, rng) for i in range(n)]
            fig = score(outs, unknown_ok=name == "v_victim_silent")
            fig["seconds"] = round(time.perf_counter() - t, 1)
            report[name] = fig
            if not args.json:
                print(f"{name:22s} {json.dumps({k: v for k, v in fig.items() if k != 'alert_types'})}")
                print(f"{'':22s} types {fig['alert_types']}", flush=True)
    report["seconds"] = round(time.perf_counter() - t_start, 1)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"total {report['seconds']} s")


if __name__ == "__main__":
    main()
