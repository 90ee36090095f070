"""One request's access: who is asking, why, which cases they may see — and the audit record of it.

Every route that returns or changes case, device, position or alert data takes a :class:`Gate`
(``Depends(gate(roles…))``): it checks the role, scopes cases by unit (:func:`emon.access.may_see_case`),
parses the purpose (``X-Purpose`` header or ``purpose`` query parameter), and records each consultation
or refusal in the audit log before the data leaves (a failing audit log is a 503, not an unlogged read).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar

from fastapi import Depends, HTTPException, Request, status

from emon.access import VICTIM_POSITION_PURPOSES, Principal, Purpose, Role, may_see_case, parse_purpose
from emon.api.auth import require
from emon.api.deps import runtime
from emon.audit import Entry, Outcome
from emon.case import Case
from emon.casebook import CaseRecord
from emon.device import Device
from emon.errors import InvalidInput

# A case's document or the case book's record of it: both carry the units that scope who sees it.
C = TypeVar("C", Case, CaseRecord)


@dataclass
class Gate:
    request: Request
    who: Principal

    @property
    def purpose(self) -> Purpose | None:
        """The purpose the person gave (header ``X-Purpose`` or query ``purpose``); 422 if unknown."""
        raw = self.request.headers.get("x-purpose") or self.request.query_params.get("purpose")
        try:
            return parse_purpose(raw)
        except InvalidInput as exc:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, {"error": "invalid_purpose", "message": str(exc)}
            ) from exc

    def entry(self, action: str, outcome: Outcome = Outcome.ALLOWED, **what: Any) -> Entry:
        purpose = self.purpose
        return Entry.of(
            self.who,
            datetime.now(UTC),
            action,
            outcome,
            purpose=None if purpose is None else purpose.value,
            **what,
        )

    async def log(self, action: str, outcome: Outcome = Outcome.ALLOWED, **what: Any) -> None:
        """Record one consultation or change (``case_id``, ``device_id``, ``alert_id``, ``detail``)."""
        await runtime(self.request).audit.record(self.entry(action, outcome, **what))

    async def log_cases(self, action: str, case_ids: Iterable[str], **what: Any) -> None:
        """Record a read that returned several cases' data: one record per case (or one if none)."""
        ids = sorted(set(case_ids))
        entries = [self.entry(action, case_id=c, **what) for c in ids] or [self.entry(action, **what)]
        await runtime(self.request).audit.record(*entries)

    async def refuse(self, code: int, error: str, message: str, action: str, **what: Any) -> NoReturn:
        """Record a refusal, then refuse."""
        await self.log(action, Outcome.REFUSED, detail={"error": error, **what.pop("detail", {})}, **what)
        raise HTTPException(code, {"error": error, "message": message})

    def sees(self, case: Case | CaseRecord) -> bool:
        return may_see_case(self.who, case.units)

    async def case(self, case: Case | None, case_id: str, action: str) -> Case:
        """``case`` if this caller may see it: 404 if there is none, 403 (recorded) if outside their units."""
        if case is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such case")
        if not self.sees(case):
            await self.refuse(
                status.HTTP_403_FORBIDDEN,
                "out_of_scope",
                "this case is not one of your units'",
                action,
                case_id=case_id,
            )
        return case

    async def device(self, device: Device | None, device_id: str, cases: list[C], action: str) -> list[C]:
        """The device's open cases this caller may see; 404 if unknown, 403 (recorded) if none of them
        is theirs (an admin or unscoped user sees every device)."""
        if device is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "unknown device")
        visible = [c for c in cases if self.sees(c)]
        if not visible and not self.who.unscoped:
            await self.refuse(
                status.HTTP_403_FORBIDDEN,
                "out_of_scope",
                "this device is in none of your units' cases",
                action,
                device_id=device_id,
            )
        return visible

    async def victim_purpose(self, action: str, **what: Any) -> Purpose:
        """The purpose for seeing a victim's position; without one (or with one that does not justify
        it) the read is refused (400, recorded)."""
        purpose = self.purpose
        if purpose is None:
            await self.refuse(
                status.HTTP_400_BAD_REQUEST,
                "purpose_required",
                "a victim's position is shown only with a purpose (X-Purpose header or ?purpose=): "
                + ", ".join(sorted(p.value for p in VICTIM_POSITION_PURPOSES)),
                action,
                **what,
            )
        if purpose not in VICTIM_POSITION_PURPOSES:
            await self.refuse(
                status.HTTP_400_BAD_REQUEST,
                "purpose_not_allowed",
                f"purpose {purpose.value} does not justify seeing a victim's position",
                action,
                **what,
            )
        return purpose


def gate(*roles: Role) -> Callable[[Request], Awaitable[Gate]]:
    """A FastAPI dependency: the role check of :func:`require`, then the request's :class:`Gate`."""
    check = require(*roles)

    async def dependency(request: Request, who: Principal = Depends(check)) -> Gate:
        return Gate(request, who)

    return dependency
