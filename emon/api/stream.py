"""The monitoring room's live feed: hub messages as Server-Sent Events, scoped, private and audited.

``GET /stream`` (under /api/v1) sends ``event: alert|position|gap`` with ``data: <json>``, an ``id:``
that counts the events of this connection, and a comment line as a heartbeat when idle. It ends with
``event: end`` when the credential it was opened with stops being valid (revoked, expired, user
disabled): the request is authenticated again every :data:`RECHECK_S` seconds.

What a stream shows (:class:`StreamFilter`): only the cases of the caller's units (emon/access.py);
an offender's position; a victim's position only if the stream was opened with a purpose that allows
it (``?purpose=``, see emon/access.py) and only while one of the victim's cases has an alert concerning
the victim's safety (emon/privacy.py). Each stream keeps its own view of such alerts, loaded when it
starts and kept current from the ``alert`` messages of the same stream, so the view and the positions
it filters arrive in one order; after a ``gap`` the view is reloaded before anything else is forwarded.

Audit: one record when a stream opens, and one per case the first time the stream shows that case.

Delivery is at most once per connection; a client that reconnects or sees ``gap`` reloads from the
REST API (``id`` values are per connection; ``Last-Event-ID`` is not honoured, there is no replay).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.sse import EventSourceResponse, format_sse_event

from emon.access import VICTIM_POSITION_PURPOSES, Role
from emon.api.auth import Authentication
from emon.api.deps import runtime
from emon.api.gate import Gate, gate
from emon.audit import Outcome
from emon.case import Case
from emon.casebook import HasDevices
from emon.privacy import LiveMessage, VictimVisibleCases, alert_for_viewer, privacy_filter
from emon.waiting import within

log = logging.getLogger(__name__)

router = APIRouter()
ROOM = gate(Role.PROBATION, Role.POLICE)

HEARTBEAT_S = 15.0  # below the idle timeouts of common reverse proxies (30-60 s)
RECHECK_S = 2.0  # a revoked token's stream ends within this (plus one lookup)
RETRY_MS = 3000  # the reconnect delay a browser EventSource would use; our page has its own backoff


class AlertSource(Protocol):
    """The part of the alert service the stream needs."""

    async def open_alerts_of(self, case_ids: Sequence[str]) -> list[dict[str, Any]]: ...


class CaseSource(Protocol):
    """The open cases (ids suffice: the case book's records)."""

    def all(self) -> Sequence[HasDevices]: ...


class StreamFilter:
    """What one stream may forward: scope by unit, the victim-privacy rule, and redaction. Pure.

    ``sees(case_id)``: the case is one of the viewer's units'. ``case_of``: the case by id.
    ``show_victim``: the viewer gave a purpose that allows seeing a victim's position.
    """

    def __init__(
        self, sees: Callable[[str], bool], case_of: Callable[[str], Case | None], show_victim: bool
    ) -> None:
        self._sees = sees
        self._case_of = case_of
        self.show_victim = show_victim
        self.view = VictimVisibleCases(case_of)

    def reload(self, alerts: Iterable[Mapping[str, Any]]) -> None:
        self.view = VictimVisibleCases(self._case_of, alerts)

    def apply(self, kind: str, body: Mapping[str, Any]) -> LiveMessage | None:
        """The message as this viewer may see it, or None to withhold it."""
        if kind == "alert":
            case_id = body.get("case_id")
            if not isinstance(case_id, str) or not self._sees(case_id):
                return None
            self.view.update(body)
            return kind, alert_for_viewer(body, self._case_of(case_id), self.show_victim)
        if kind in ("task", "order"):  # a room task / order status names its case: scoped like an alert
            case_id = body.get("case_id")
            return (kind, dict(body)) if isinstance(case_id, str) and self._sees(case_id) else None
        if kind == "position":
            case_ids = body.get("case_ids")
            if not isinstance(case_ids, list):
                return None
            mine = [c for c in case_ids if isinstance(c, str) and self._sees(c)]
            if not mine:
                return None
            body = {**body, "case_ids": mine}
            if body.get("role") == "victim" and not self.show_victim:
                return None
        return privacy_filter(kind, body, self.view.cases)


def cases_in(message: LiveMessage) -> list[str]:
    """The case ids a forwarded message shows."""
    kind, body = message
    if kind in ("alert", "task", "order") and isinstance(body.get("case_id"), str):
        return [body["case_id"]]
    ids = body.get("case_ids")
    return [c for c in ids if isinstance(c, str)] if isinstance(ids, list) else []


def sse_event(event_id: int, kind: str, body: Mapping[str, Any]) -> str:
    """One SSE event, framed by FastAPI's :func:`format_sse_event`. JSON never holds a raw newline, so
    ``data`` is one line."""
    data = json.dumps(body, separators=(",", ":"), ensure_ascii=False, default=str)
    return format_sse_event(data_str=data, event=kind, id=str(event_id)).decode()


async def load_open_alerts(
    alerts: AlertSource, cases: CaseSource, sees: Callable[[str], bool]
) -> list[dict[str, Any]]:
    """The unresolved alerts of every open case the viewer sees (one call for them all)."""
    mine = [c.case_id for c in cases.all() if sees(c.case_id)]
    return await alerts.open_alerts_of(mine) if mine else []


async def _never_ends() -> bool:
    return True


async def _no_record(case_id: str) -> None:
    return None


async def event_stream(
    queue: asyncio.Queue[LiveMessage],
    load: Callable[[], Awaitable[list[dict[str, Any]]]],
    filt: StreamFilter,
    heartbeat_s: float = HEARTBEAT_S,
    *,
    still_valid: Callable[[], Awaitable[bool]] = _never_ends,
    recheck_s: float = RECHECK_S,
    shown: Callable[[str], Awaitable[None]] = _no_record,
) -> AsyncGenerator[str, None]:
    """SSE text for the messages of ``queue`` (already subscribed), through ``filt``.

    ``load`` gives the open alerts at the start and again after each ``gap``. ``still_valid`` is
    asked every ``recheck_s``; when it answers False the stream sends ``event: end`` and stops.
    ``shown(case_id)`` is awaited the first time a case is shown (the audit record).
    """
    yield format_sse_event(comment="connected", retry=RETRY_MS).decode()
    filt.reload(await load())
    loop = asyncio.get_running_loop()
    seq = 0
    seen: set[str] = set()
    last_beat = next_check = loop.time()
    next_check += recheck_s
    while True:
        now = loop.time()
        if now >= next_check:
            if not await still_valid():
                yield format_sse_event(
                    event="end", data_str='{"reason":"credential no longer valid"}'
                ).decode()
                return
            next_check = loop.time() + recheck_s
        wait = max(0.0, min(next_check, last_beat + heartbeat_s) - loop.time())
        try:
            kind, body = await within(queue.get(), wait)
        except TimeoutError:
            if loop.time() >= last_beat + heartbeat_s:
                last_beat = loop.time()
                yield format_sse_event(comment="heartbeat").decode()
            continue
        if kind == "gap":
            # Alert changes may have been dropped: rebuild the view before forwarding anything.
            # If that fails the stream ends (the client reconnects), rather than go on with a stale view.
            filt.reload(await load())
        try:
            out = filt.apply(kind, body)
            if out is None:
                continue
            seq += 1
            text = sse_event(seq, *out)
        except Exception:  # one bad message must not end the room's feed
            log.exception("stream: cannot forward a %s message", kind)
            continue
        for case_id in cases_in(out):
            if case_id not in seen:
                seen.add(case_id)
                await shown(case_id)
        last_beat = loop.time()
        yield text


@router.get("/stream")
async def stream(request: Request, g: Gate = Depends(ROOM)) -> EventSourceResponse:
    """Live alerts and positions of the caller's units' cases (text/event-stream). ``?purpose=`` (one of
    alert_response, dispatch, victim_contact, investigation) is needed to be shown a victim's position."""
    rt = runtime(request)
    show_victim = g.purpose in VICTIM_POSITION_PURPOSES

    def case_of(case_id: str) -> Case | None:
        return rt.casebook.document(case_id)  # for alerts only (which zones protect the victim)

    def sees(case_id: str) -> bool:
        case = rt.casebook.get(case_id)  # per message: the record, no document built
        return g.who.unscoped if case is None else g.sees(case)

    auth: Authentication = request.app.state.auth

    async def still_valid() -> bool:
        try:
            await auth.authenticate(request)
        except HTTPException:
            return False
        return True

    async def shown(case_id: str) -> None:
        await g.log("stream.case", case_id=case_id)

    await g.log("stream.open", Outcome.ALLOWED, detail={"victim_positions": show_victim})
    filt = StreamFilter(sees, case_of, show_victim)

    async def body() -> AsyncIterator[str]:
        async with rt.hub.subscribe() as queue:
            async for chunk in event_stream(
                queue,
                lambda: load_open_alerts(rt.alerts, rt.casebook, sees),
                filt,
                still_valid=still_valid,
                shown=shown,
            ):
                yield chunk

    return EventSourceResponse(body(), headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
