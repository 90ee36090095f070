"""The monitoring room's live feed: hub messages as Server-Sent Events, with the victim privacy rule.

``GET /stream`` (under /api/v1) sends ``event: alert|position|gap`` with ``data: <json>``, an ``id:``
that counts the events of this connection, and a comment line as a heartbeat when idle.

Privacy rule: a victim's position leaves the server only while one of the victim's cases has an alert
that is not resolved (open or acknowledged); an offender's position always does. Each stream keeps its
own view of which cases have such an alert (:class:`OpenAlertCases`), loaded from the alert service
when the stream starts and kept current from the ``alert`` messages of the same stream, so the view
and the positions it filters arrive in one order. After a ``gap`` (the hub dropped messages for this
slow client, possibly alert changes) the view is reloaded before anything else is forwarded.

Delivery is at most once per connection; a client that reconnects or sees ``gap`` reloads from the
REST API (``id`` values are per connection; ``Last-Event-ID`` is not honoured, there is no replay).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any, Protocol

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from emon.alerts.types import AlertState
from emon.api.auth import Role, require
from emon.api.deps import runtime
from emon.case import Case
from emon.hub import Message

log = logging.getLogger(__name__)

router = APIRouter()

HEARTBEAT_S = 15.0  # below the idle timeouts of common reverse proxies (30-60 s)
RETRY_MS = 3000  # the reconnect delay a browser EventSource would use; our page has its own backoff
FORWARDED_KINDS = frozenset({"alert", "position", "gap", "task"})
UNRESOLVED = frozenset({AlertState.OPEN, AlertState.ACKNOWLEDGED})  # str enum: matches the JSON "state"


class AlertSource(Protocol):
    """The part of the alert service the stream needs."""

    async def open_alerts(self, case_id: str) -> list[dict[str, Any]]: ...


class CaseSource(Protocol):
    def all(self) -> list[Case]: ...


class OpenAlertCases:
    """Which cases have an unresolved alert, from alert JSON objects. Pure; idempotent per message."""

    def __init__(self, alerts: Iterable[Mapping[str, Any]] = ()) -> None:
        self._open: dict[str, set[str]] = {}  # case_id -> alert_ids not resolved
        for alert in alerts:
            self.update(alert)

    def update(self, alert: Mapping[str, Any]) -> None:
        """Apply one alert's current state (a newer message for the same alert_id replaces it)."""
        case_id, alert_id = alert.get("case_id"), alert.get("alert_id")
        if not isinstance(case_id, str) or not isinstance(alert_id, str):
            return
        if alert.get("state") in UNRESOLVED:
            self._open.setdefault(case_id, set()).add(alert_id)
        else:
            ids = self._open.get(case_id)
            if ids is not None:
                ids.discard(alert_id)
                if not ids:
                    del self._open[case_id]

    @property
    def cases(self) -> frozenset[str]:
        return frozenset(self._open)


def privacy_filter(kind: str, body: Mapping[str, Any], open_cases: frozenset[str]) -> Message | None:
    """What may be forwarded of one hub message, or None to withhold it.

    Alerts and gaps pass. An offender position passes. A victim position passes only for the cases
    in ``open_cases`` (``case_ids`` is narrowed to those), so a victim in two cases is not shown on
    the map of the case without an alert. Anything else — an unknown kind or role — is withheld.
    """
    if kind not in FORWARDED_KINDS:
        return None
    if kind != "position":
        return kind, dict(body)
    role = body.get("role")
    if role == "offender":
        return kind, dict(body)
    if role != "victim":
        return None
    case_ids = body.get("case_ids")
    if not isinstance(case_ids, list):
        return None
    visible = [c for c in case_ids if c in open_cases]
    if not visible:
        return None
    return kind, {**body, "case_ids": visible}


def sse_event(event_id: int, kind: str, body: Mapping[str, Any]) -> str:
    """One SSE event. JSON never holds a raw newline, so ``data`` is one line."""
    data = json.dumps(body, separators=(",", ":"), ensure_ascii=False, default=str)
    return f"id: {event_id}\nevent: {kind}\ndata: {data}\n\n"


async def load_open_cases(alerts: AlertSource, cases: CaseSource) -> OpenAlertCases:
    """The unresolved alerts of every open case, from the alert service (one call per case)."""
    results = await asyncio.gather(*(alerts.open_alerts(c.case_id) for c in cases.all()))
    return OpenAlertCases(a for batch in results for a in batch)


async def event_stream(
    queue: asyncio.Queue[Message],
    load: Callable[[], Awaitable[OpenAlertCases]],
    heartbeat_s: float = HEARTBEAT_S,
) -> AsyncGenerator[str, None]:
    """SSE text for the messages of ``queue`` (already subscribed), filtered by the privacy rule.

    ``load`` is called once at the start and again after each ``gap``. The queue is subscribed
    before the first load, so no alert change between the load and the first message is missed.
    """
    yield f"retry: {RETRY_MS}\n: connected\n\n"
    view = await load()
    seq = 0
    while True:
        try:
            kind, body = await asyncio.wait_for(queue.get(), heartbeat_s)
        except TimeoutError:
            yield ": heartbeat\n\n"
            continue
        if kind == "gap":
            # Alert changes may have been dropped: rebuild the view before forwarding anything.
            # If that fails the stream ends (the client reconnects), rather than go on with a stale view.
            view = await load()
        try:
            if kind == "alert":
                view.update(body)
            out = privacy_filter(kind, body, view.cases)
            if out is None:
                continue
            seq += 1
            text = sse_event(seq, *out)
        except Exception:  # one bad message must not end the room's feed
            log.exception("stream: cannot forward a %s message", kind)
            continue
        yield text


@router.get("/stream", dependencies=[Depends(require(Role.PROBATION, Role.POLICE))])
async def stream(request: Request) -> StreamingResponse:
    """Live alerts and positions for the monitoring room (text/event-stream)."""
    rt = runtime(request)

    async def body() -> AsyncIterator[str]:
        async with rt.hub.subscribe() as queue:
            async for chunk in event_stream(queue, lambda: load_open_cases(rt.alerts, rt.casebook)):
                yield chunk

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
