"""Many cases at once: compiled rules, device routing, batches, ticks and persistence hooks.

The engine holds no clock and does no I/O: callers pass ``now`` and persist what
:meth:`Engine.changed` reports (via :meth:`Engine.packed`, or :meth:`Engine.snapshot` as JSON).
Cost per fix depends only on the zones of the fix's own case(s), found through a device → case index.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from emon.case import Case, CaseStatus
from emon.casebook import DeviceIndex
from emon.fix import Fix
from emon.geofence.config import EvalConfig
from emon.geofence.evaluate import evaluate_fix
from emon.geofence.events import EvalEvent
from emon.geofence.measure import zone_distance_lists
from emon.geofence.rules import CompiledCase, compile_case
from emon.geofence.state import CaseState
from emon.geofence.tick import quiet_changes
from emon.geofence.tick import tick as tick_case


class Engine:
    """Evaluates fixes of many cases; one :class:`CaseState` per case."""

    def __init__(self, config: EvalConfig | None = None) -> None:
        self.config = config or EvalConfig()
        self._rules: dict[str, CompiledCase] = {}
        self._states: dict[str, CaseState] = {}
        self._by_device = DeviceIndex()
        self._changed: set[str] = set()

    # -- cases -------------------------------------------------------------------------------

    def add_case(self, case: Case, state: Mapping[str, Any] | bytes | None = None) -> None:
        """Add ``case``, or replace it keeping the state of rules whose names did not change.

        ``state`` (a :meth:`snapshot` or :meth:`packed`) restores persisted state. A closed case is
        removed.
        """
        if case.status is CaseStatus.CLOSED:
            self.remove_case(case.case_id)
            return
        compiled = compile_case(case, self.config)
        old = self._states.get(case.case_id)
        self.remove_case(case.case_id)
        if state is not None:
            new = _state_of(state)
        elif old is not None:
            new = old
            keep = {z.rule for z in compiled.zones} | ({"proximity"} if compiled.proximity else set())
            new.rules = {k: v for k, v in old.rules.items() if k in keep}
            devices = {case.offender_device, case.victim_device}
            new.devices = {k: v for k, v in old.devices.items() if k in devices}
        else:
            new = CaseState()
        self._rules[case.case_id] = compiled
        self._states[case.case_id] = new
        self._by_device.add(case)
        self._changed.add(case.case_id)

    replace_case = add_case

    def remove_case(self, case_id: str) -> None:
        """Forget ``case_id`` and its state (no events). Unknown ids are ignored."""
        compiled = self._rules.pop(case_id, None)
        self._states.pop(case_id, None)
        if compiled is not None:
            self._by_device.remove(compiled)

    def case_ids(self) -> list[str]:
        return sorted(self._rules)

    def cases_for_device(self, device_id: str) -> tuple[str, ...]:
        """The cases a device takes part in (as offender or victim)."""
        return self._by_device.cases_of(device_id)

    # -- evaluation --------------------------------------------------------------------------

    def evaluate_batch(self, fixes: Sequence[Fix], now: datetime) -> list[EvalEvent]:
        """Evaluate ``fixes`` (any order; sorted here by fix time) at UTC decision time ``now``.

        Zone distances for the whole batch are measured in one vectorised pass; the state
        machines then run per fix in fix-time order. Fixes of unknown devices are ignored.
        """
        cases_of, rules = self._by_device.cases_of, self._rules
        # Fixes of devices in no case (most of a shared feed) are dropped before sorting: a stable
        # sort of the rest keeps the same order as the whole sorted and then filtered.
        ordered = sorted([f for f in fixes if cases_of(f.device_id)], key=_fix_order)
        work = [(fix, rules[case_id]) for fix in ordered for case_id in cases_of(fix.device_id)]
        need = [i for i, (f, cc) in enumerate(work) if cc.zones and f.device_id == cc.offender_device]
        dists = zone_distance_lists([(work[i][0].lat, work[i][0].lon, work[i][1]) for i in need])
        by_item = dict(zip(need, dists, strict=True))
        events: list[EvalEvent] = []
        states, changed, config = self._states, self._changed, self.config
        for i, (fix, cc) in enumerate(work):
            case_id = cc.case_id
            _, out = evaluate_fix(states[case_id], cc, fix, now, config, by_item.get(i))
            if out:
                events += out
            changed.add(case_id)
        return events

    def evaluate(self, fix: Fix, now: datetime) -> list[EvalEvent]:
        """Evaluate one fix; see :meth:`evaluate_batch`."""
        return self.evaluate_batch([fix], now)

    def tick(self, now: datetime) -> list[EvalEvent]:
        """Advance every case to UTC ``now``: staleness, curfew starts, rule ends, expiry reminders."""
        events: list[EvalEvent] = []
        for case_id, cc in self._rules.items():
            state = self._states[case_id]
            before = quiet_changes(state)
            _, out = tick_case(state, cc, now, self.config)
            if out or quiet_changes(state) != before:
                self._changed.add(case_id)
            events += out
        return events

    # -- persistence -------------------------------------------------------------------------

    def snapshot(self, case_id: str) -> dict[str, Any]:
        """The state of ``case_id`` as a JSON-compatible dict (KeyError if unknown)."""
        return self._states[case_id].to_dict()

    def packed(self, case_id: str) -> bytes:
        """The state of ``case_id`` as compact bytes (:meth:`CaseState.pack`; KeyError if unknown)."""
        return self._states[case_id].pack()

    def restore(self, case_id: str, data: Mapping[str, Any] | bytes) -> None:
        """Replace the state of a known case with a :meth:`snapshot` or :meth:`packed` (KeyError if
        unknown)."""
        if case_id not in self._rules:
            raise KeyError(case_id)
        self._states[case_id] = _state_of(data)

    def changed(self) -> list[str]:
        """Cases whose state may have changed since the previous call (sorted); resets the set."""
        out = sorted(c for c in self._changed if c in self._rules)
        self._changed.clear()
        return out


def _fix_order(f: Fix) -> tuple[datetime, str, int]:
    return (f.ts, f.device_id, -1 if f.seq is None else f.seq)


def _state_of(data: Mapping[str, Any] | bytes) -> CaseState:
    return CaseState.unpack(data) if isinstance(data, bytes) else CaseState.from_dict(dict(data))
