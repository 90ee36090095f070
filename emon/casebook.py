"""The open cases in memory, indexed by device: who is monitored, against whom, under which order."""

from __future__ import annotations

from emon.case import Case, CaseStatus


class CaseBook:
    """Open cases by id and by device (offender tag or victim device). Updated by the API."""

    def __init__(self, cases: list[Case] | None = None) -> None:
        self._cases: dict[str, Case] = {}
        self._by_device: dict[str, set[str]] = {}
        for c in cases or []:
            self.put(c)

    def put(self, case: Case) -> None:
        self.remove(case.case_id)
        if case.status is not CaseStatus.OPEN:
            return
        self._cases[case.case_id] = case
        for device in (case.offender_device, case.victim_device):
            if device is not None:
                self._by_device.setdefault(device, set()).add(case.case_id)

    def remove(self, case_id: str) -> None:
        old = self._cases.pop(case_id, None)
        if old is None:
            return
        for device in (old.offender_device, old.victim_device):
            if device is not None:
                ids = self._by_device.get(device, set())
                ids.discard(case_id)
                if not ids:
                    self._by_device.pop(device, None)

    def get(self, case_id: str) -> Case | None:
        return self._cases.get(case_id)

    def cases_for_device(self, device_id: str) -> list[Case]:
        return [self._cases[i] for i in sorted(self._by_device.get(device_id, ()))]

    def all(self) -> list[Case]:
        return list(self._cases.values())

    def __len__(self) -> int:
        return len(self._cases)
