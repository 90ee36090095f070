"""The open cases in memory, indexed by device: who is monitored, against whom, under which order."""

from __future__ import annotations

from emon.case import Case, CaseStatus


class DeviceIndex:
    """The one device ↔ case index: device id → the ids of the cases it takes part in (as offender
    or victim), in the order they were added. Used by :class:`CaseBook` and by the geofence engine.
    Lookups (one per fix) return a stored tuple; only adding and removing a case build new ones."""

    def __init__(self) -> None:
        self._cases: dict[str, tuple[str, ...]] = {}

    def add(self, case: Case) -> None:
        for device in (case.offender_device, case.victim_device):
            if device is not None and case.case_id not in self._cases.get(device, ()):
                self._cases[device] = (*self._cases.get(device, ()), case.case_id)

    def remove(self, case: Case) -> None:
        for device in (case.offender_device, case.victim_device):
            if device is None or device not in self._cases:
                continue
            rest = tuple(c for c in self._cases[device] if c != case.case_id)
            if rest:
                self._cases[device] = rest
            else:
                del self._cases[device]

    def cases_of(self, device_id: str) -> tuple[str, ...]:
        return self._cases.get(device_id, ())


class CaseBook:
    """Open cases by id and by device (offender tag or victim device). Updated by the API."""

    def __init__(self, cases: list[Case] | None = None) -> None:
        self._cases: dict[str, Case] = {}
        self._by_device = DeviceIndex()
        for c in cases or []:
            self.put(c)

    def put(self, case: Case) -> None:
        self.remove(case.case_id)
        if case.status is not CaseStatus.OPEN:
            return
        self._cases[case.case_id] = case
        self._by_device.add(case)

    def remove(self, case_id: str) -> None:
        old = self._cases.pop(case_id, None)
        if old is not None:
            self._by_device.remove(old)

    def get(self, case_id: str) -> Case | None:
        return self._cases.get(case_id)

    def cases_for_device(self, device_id: str) -> list[Case]:
        return [self._cases[i] for i in sorted(self._by_device.cases_of(device_id))]

    def all(self) -> list[Case]:
        return list(self._cases.values())

    def __len__(self) -> int:
        return len(self._cases)
