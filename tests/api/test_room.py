"""The monitoring room: the privacy filter, the live stream (through a real uvicorn), the map data and
the static page."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from emon.api import pages, room, stream
from emon.api.auth import Authenticator, Principal, Role, token_hash
from emon.api.stream import StreamFilter, event_stream, sse_event
from emon.audit import MemoryAuditLog
from emon.case import Case
from emon.casebook import CaseBook
from emon.hub import Hub
from emon.privacy import LiveMessage, VictimVisibleCases, privacy_filter

TOKENS = {
    "tok-probation": Principal("reclassering", Role.PROBATION, frozenset({"probation:noord"})),
    "tok-police": Principal("politie", Role.POLICE, frozenset({"police:ams"})),
    "tok-prosecutor": Principal("om", Role.PROSECUTOR, frozenset({"om:ams"})),
    "tok-other-police": Principal("elders", Role.POLICE, frozenset({"police:rdam"})),
}
PARK = {
    "type": "Polygon",
    "coordinates": [[[4.90, 52.35], [4.91, 52.35], [4.91, 52.36], [4.90, 52.36], [4.90, 52.35]]],
}
CASE_1 = Case.model_validate(
    {
        "case_id": "C1",
        "risk": "high",
        "offender_device": "tag-1",
        "victim_device": "vic-1",
        "residence": {"lat": 52.37, "lon": 4.89},
        "units": ["police:ams", "probation:noord"],
        "order": {
            "exclusion_zones": [
                {"name": "Woning slachtoffer", "circle": {"lat": 52.36, "lon": 4.90, "radius_m": 500}},
                {"name": "Park", "geometry": PARK},
            ],
            "inclusion_zones": [
                {"name": "Gemeente", "circle": {"lat": 52.37, "lon": 4.89, "radius_m": 8000}}
            ],
            "contact_ban_m": 300,
        },
    }
)
# The same victim protected in a second case, against another offender.
CASE_2 = Case.model_validate(
    {
        "case_id": "C2",
        "risk": "low",
        "offender_device": "tag-2",
        "victim_device": "vic-1",
        "residence": {"lat": 52.09, "lon": 5.12},
        "units": ["police:ams", "probation:noord"],
        "order": {"contact_ban_m": 200},
    }
)
FIXES = {
    "tag-1": {
        "device_id": "tag-1",
        "ts": "2026-11-23T10:00:00+00:00",
        "lat": 52.361,
        "lon": 4.901,
        "acc_m": 12.0,
    },
    "vic-1": {
        "device_id": "vic-1",
        "ts": "2026-11-23T10:00:05+00:00",
        "lat": 52.362,
        "lon": 4.902,
        "acc_m": 20.0,
    },
}


def alert(alert_id: str, case_id: str, state: str, type_: str = "proximity_breach") -> dict[str, Any]:
    return {
        "alert_id": alert_id,
        "case_id": case_id,
        "type": type_,
        "rule": "proximity",
        "state": state,
        "priority": "high",
    }


def position(role: str, device_id: str, *case_ids: str) -> dict[str, Any]:
    return {
        "device_id": device_id,
        "case_ids": list(case_ids),
        "role": role,
        "lat": 52.36,
        "lon": 4.9,
        "acc_m": 10.0,
        "ts": "2026-11-23T10:00:00+00:00",
    }


# ---------------------------------------------------------------- the privacy filter (pure)

OFFENDER = position("offender", "tag-1", "C1")
VICTIM = position("victim", "vic-1", "C1", "C2")


@pytest.mark.parametrize(
    ("kind", "body", "open_cases", "expected"),
    [
        ("alert", alert("A1", "C1", "open"), set(), ("alert", alert("A1", "C1", "open"))),
        ("gap", {}, set(), ("gap", {})),
        ("position", OFFENDER, set(), ("position", OFFENDER)),
        ("position", VICTIM, set(), None),
        ("position", VICTIM, {"C3"}, None),
        ("position", VICTIM, {"C2"}, ("position", {**VICTIM, "case_ids": ["C2"]})),
        ("position", VICTIM, {"C1", "C2"}, ("position", VICTIM)),
        ("position", {**VICTIM, "case_ids": "C1"}, {"C1"}, None),  # malformed: withheld
        ("position", {**VICTIM, "role": "bystander"}, {"C1"}, None),  # unknown role: withheld
        ("position", {k: v for k, v in VICTIM.items() if k != "role"}, {"C1"}, None),
        ("debug", {"x": 1}, {"C1"}, None),  # unknown kind: withheld
    ],
)
def test_privacy_filter(
    kind: str, body: dict[str, Any], open_cases: set[str], expected: LiveMessage | None
) -> None:
    assert privacy_filter(kind, body, frozenset(open_cases)) == expected


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ([alert("A1", "C1", "open")], {"C1"}),
        ([alert("A1", "C1", "acknowledged")], {"C1"}),
        ([alert("A1", "C1", "open"), alert("A1", "C1", "resolved")], set()),
        ([alert("A1", "C1", "open"), alert("A2", "C1", "open"), alert("A1", "C1", "resolved")], {"C1"}),
        ([alert("A1", "C1", "resolved")], set()),
        ([alert("A1", "C1", "open"), alert("A1", "C1", "open")], {"C1"}),  # redelivery is harmless
        ([alert("A1", "C1", "open"), alert("A2", "C2", "acknowledged")], {"C1", "C2"}),
        ([{"case_id": "C1", "state": "open"}], set()),  # no alert_id: ignored
    ],
)
def test_open_alert_cases(messages: list[dict[str, Any]], expected: set[str]) -> None:
    view = VictimVisibleCases({"C1": CASE_1, "C2": CASE_2}.get)
    for m in messages:
        view.update(m)
    assert view.cases == expected


def test_sse_event_is_one_event() -> None:
    text = sse_event(7, "alert", {"note": "line 1\nline 2", "naam": "Zoë"})
    assert text == 'event: alert\ndata: {"note":"line 1\\nline 2","naam":"Zoë"}\nid: 7\n\n'


# ---------------------------------------------------------------- event_stream (pure queue in, text out)


async def test_event_stream_reloads_after_gap_and_beats_when_idle() -> None:
    queue: asyncio.Queue[LiveMessage] = asyncio.Queue()
    views: list[list[dict[str, Any]]] = [[alert("A1", "C1", "open")], []]
    loads = 0

    async def load() -> list[dict[str, Any]]:
        nonlocal loads
        loads += 1
        return views[loads - 1]

    for msg in [
        ("position", position("victim", "vic-1", "C1")),
        ("gap", {}),
        ("position", position("victim", "vic-1", "C1")),
        ("position", OFFENDER),
    ]:
        queue.put_nowait(msg)
    filt = StreamFilter(lambda _: True, {"C1": CASE_1}.get, show_victim=True)
    gen = event_stream(queue, load, filt, heartbeat_s=0.05)
    chunks = [await anext(gen) for _ in range(5)]
    await gen.aclose()
    assert chunks[0] == ": connected\nretry: 3000\n\n"
    assert [re.findall(r"^event: (\w+)", c, re.M) for c in chunks[1:4]] == [
        ["position"],
        ["gap"],
        ["position"],
    ]
    assert '"role":"victim"' in chunks[1] and '"role":"offender"' in chunks[3]  # victim withheld after reload
    assert [re.findall(r"^id: (\d+)", c, re.M) for c in chunks[1:4]] == [["1"], ["2"], ["3"]]
    assert chunks[4] == ": heartbeat\n\n"
    assert loads == 2


# ---------------------------------------------------------------- the app, served by uvicorn


class FakeTokens:
    def __init__(self, tokens: Mapping[str, Principal]) -> None:
        self._by_hash = {token_hash(k): v for k, v in tokens.items()}

    async def principal_for(self, token_sha256: str) -> Principal | None:
        return self._by_hash.get(token_sha256)


class FakeAlerts:
    def __init__(self) -> None:
        self.alerts: dict[str, dict[str, Any]] = {}
        self.asked: list[list[str]] = []

    async def open_alerts(self, case_id: str) -> list[dict[str, Any]]:
        return [a for a in self.alerts.values() if a["case_id"] == case_id and a["state"] != "resolved"]

    async def open_alerts_of(self, case_ids: Sequence[str]) -> list[dict[str, Any]]:
        self.asked.append(list(case_ids))
        return [a for a in self.alerts.values() if a["case_id"] in case_ids and a["state"] != "resolved"]


class FakeLive:
    def __init__(self, fixes: Mapping[str, dict[str, Any]]) -> None:
        self.fixes = dict(fixes)
        self.asked: list[str] = []

    async def latest(self, device_id: str) -> dict[str, Any] | None:
        self.asked.append(device_id)
        return self.fixes.get(device_id)


@dataclass
class Served:
    app: FastAPI
    hub: Hub
    alerts: FakeAlerts
    live: FakeLive
    base_url: str


def make_app() -> Served:
    app = FastAPI(docs_url=None, redoc_url=None)
    app.include_router(stream.router, prefix="/api/v1")
    app.include_router(room.router, prefix="/api/v1")
    app.include_router(pages.page_router)
    hub, alerts, live = Hub(), FakeAlerts(), FakeLive(FIXES)
    app.state.auth = Authenticator(FakeTokens(TOKENS), admin_token=None)
    app.state.rt = SimpleNamespace(
        hub=hub, live=live, casebook=CaseBook([CASE_1, CASE_2]), alerts=alerts, audit=MemoryAuditLog()
    )
    return Served(app, hub, alerts, live, "http://test")


@pytest.fixture
def asgi() -> Served:
    return make_app()


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    s = make_app()
    config = uvicorn.Config(
        s.app, host="127.0.0.1", port=0, lifespan="off", log_level="warning", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
            await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    s.base_url = f"http://127.0.0.1:{port}"
    yield s
    server.should_exit = True
    await task


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class SseReader:
    """Reads a text/event-stream response event by event (comments are skipped)."""

    def __init__(self, response: httpx.Response) -> None:
        self._lines = response.aiter_lines()

    async def _event(self, comment: str | None) -> tuple[str, str]:
        fields: dict[str, str] = {}
        while True:
            line = await anext(self._lines)
            if line.startswith(":"):
                if comment is not None and line[1:].strip() == comment:
                    return ":", comment
                continue
            if line == "":
                if "event" in fields and comment is None:
                    return fields["event"], fields["data"]
                fields = {}
                continue
            key, _, value = line.partition(":")
            fields[key] = value.removeprefix(" ")

    async def event(self) -> tuple[str, str]:
        return await asyncio.wait_for(self._event(None), 5)

    async def comment(self, text: str) -> None:
        await asyncio.wait_for(self._event(text), 5)


async def test_stream_forwards_alerts_and_withholds_victim_without_open_alert(served: Served) -> None:
    async with (
        httpx.AsyncClient(base_url=served.base_url) as client,
        client.stream(
            "GET", "/api/v1/stream", params={"purpose": "alert_response"}, headers=bearer("tok-probation")
        ) as resp,
    ):
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        sse = SseReader(resp)
        await sse.comment("connected")  # subscribed: from here nothing published is missed

        served.hub.publish("position", position("victim", "vic-1", "C1", "C2"))
        served.hub.publish("position", position("offender", "tag-1", "C1"))
        kind, data = await sse.event()
        assert kind == "position" and '"role":"offender"' in data  # the victim's fix was withheld

        served.hub.publish("alert", alert("A1", "C1", "open"))
        assert (await sse.event())[0] == "alert"
        served.hub.publish("position", position("victim", "vic-1", "C1", "C2"))
        kind, data = await sse.event()
        assert kind == "position" and '"role":"victim"' in data
        assert '"case_ids":["C1"]' in data  # not shown on the map of C2, which has no alert

        served.hub.publish("alert", alert("A1", "C1", "resolved"))
        assert (await sse.event())[0] == "alert"
        served.hub.publish("position", position("victim", "vic-1", "C1", "C2"))
        served.hub.publish("gap", {})
        assert (await sse.event())[0] == "gap"


async def test_stream_starts_from_the_open_alerts_of_the_casebook(served: Served) -> None:
    served.alerts.alerts["A9"] = alert("A9", "C2", "acknowledged")
    async with (
        httpx.AsyncClient(base_url=served.base_url) as client,
        client.stream(
            "GET", "/api/v1/stream", params={"purpose": "dispatch"}, headers=bearer("tok-police")
        ) as resp,
    ):
        sse = SseReader(resp)
        await sse.comment("connected")
        served.hub.publish("position", position("victim", "vic-1", "C1", "C2"))
        kind, data = await sse.event()
        assert kind == "position" and '"case_ids":["C2"]' in data
    assert len(served.alerts.asked) == 1  # one query for every case the viewer sees, not one per case
    async with asyncio.timeout(5):  # the client went away: the stream's hub queue is released
        while served.hub.subscriber_count:  # noqa: ASYNC110 - the hub offers no event to wait on
            await asyncio.sleep(0.01)


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), (bearer("wrong"), 401), (bearer("tok-prosecutor"), 403)],
)
async def test_stream_and_map_need_a_room_role(asgi: Served, headers: dict[str, str], status: int) -> None:
    transport = httpx.ASGITransport(app=asgi.app)
    async with httpx.AsyncClient(transport=transport, base_url=asgi.base_url) as client:
        for path in ("/api/v1/stream", "/api/v1/cases/C1/map"):
            assert (await client.get(path, headers=headers)).status_code == status
    assert asgi.hub.subscriber_count == 0


# ---------------------------------------------------------------- the map data


async def get_map(s: Served, case_id: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=s.app), base_url=s.base_url) as client:
        return await client.get(
            f"/api/v1/cases/{case_id}/map", headers={**bearer("tok-probation"), "X-Purpose": "alert_response"}
        )


async def test_map_without_open_alert_hides_the_victim(asgi: Served) -> None:
    resp = await get_map(asgi, "C1")
    assert resp.status_code == 200
    body = resp.json()
    assert body["victim"] is None and body["open_alerts"] == []
    assert body["offender"] == FIXES["tag-1"]
    assert asgi.live.asked == ["tag-1"]  # the victim's position was not even read
    assert body["case"]["case_id"] == "C1" and body["case"]["order"]["contact_ban_m"] == 300
    zones = body["zones"]
    assert zones["type"] == "FeatureCollection"
    assert [(f["properties"]["name"], f["properties"]["kind"]) for f in zones["features"]] == [
        ("Woning slachtoffer", "exclusion"),
        ("Park", "exclusion"),
        ("Gemeente", "inclusion"),
    ]
    circle = zones["features"][0]
    assert circle["geometry"]["type"] == "Polygon"
    ring = circle["geometry"]["coordinates"][0]
    assert len(ring) == room.CIRCLE_SEGMENTS + 1 and ring[0] == ring[-1]
    assert circle["properties"]["radius_m"] == 500
    assert zones["features"][1]["geometry"] == PARK


async def test_map_with_open_alert_shows_the_victim(asgi: Served) -> None:
    asgi.alerts.alerts["A1"] = alert("A1", "C1", "open")
    body = (await get_map(asgi, "C1")).json()
    assert body["victim"] == FIXES["vic-1"]
    assert [a["alert_id"] for a in body["open_alerts"]] == ["A1"]


async def test_map_of_unknown_case_is_404(asgi: Served) -> None:
    assert (await get_map(asgi, "nope")).status_code == 404


def test_map_view_filters_resolved_alerts() -> None:
    view = room.map_view(CASE_1, None, FIXES["vic-1"], [alert("A1", "C1", "resolved")])
    assert view["victim"] is None and view["open_alerts"] == []


# ---------------------------------------------------------------- the page

URL_RE = re.compile(r"(?i)\b(?:https?|wss?|ftp):|(?:src|href|action)\s*=\s*[\"']?//|url\(\s*[\"']?//|@import")


OWN_FILES = sorted(p for p in pages.STATIC_FILES if not p.startswith("vendor/"))


@pytest.mark.parametrize("name", [*OWN_FILES, *(f"{n}" for n in pages.PAGES.values())])
def test_own_static_files_name_no_other_host(name: str) -> None:
    text = (pages.STATIC_DIR / name).read_text(encoding="utf-8")
    assert not URL_RE.search(text), URL_RE.search(text)


def test_vendor_files_are_kept_with_their_licences() -> None:
    vendor = pages.STATIC_DIR / "vendor"
    for lib in ("leaflet", "swagger-ui"):
        assert (vendor / lib / "LICENSE").is_file(), lib
    assert "leaflet/leaflet.js" in "".join(k for k in pages.STATIC_FILES if k.startswith("vendor/"))


@pytest.mark.parametrize("page", sorted(pages.PAGES))
async def test_pages_and_their_assets_are_served_locally(asgi: Served, page: str) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=asgi.app), base_url=asgi.base_url
    ) as client:
        resp = await client.get(page)
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
        csp = resp.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self';" in csp and "connect-src 'self';" in csp
        refs = re.findall(r"(?:src|href)=\"([^\"]+)\"", resp.text)
        assert refs
        for ref in refs:
            if ref.startswith("data:") or not ref.startswith("static/"):
                continue  # data: icon; links to the other pages
            asset = await client.get("/" + ref)
            assert asset.status_code == 200, ref
            assert asset.headers["x-content-type-options"] == "nosniff"


async def test_stream_is_scoped_needs_a_purpose_for_the_victim_and_is_audited(served: Served) -> None:
    audit: MemoryAuditLog = served.app.state.rt.audit
    async with (
        httpx.AsyncClient(base_url=served.base_url) as client,
        client.stream("GET", "/api/v1/stream", headers=bearer("tok-other-police")) as other,
        client.stream("GET", "/api/v1/stream", headers=bearer("tok-probation")) as mine,
    ):
        theirs, ours = SseReader(other), SseReader(mine)
        await theirs.comment("connected")
        await ours.comment("connected")
        served.hub.publish("alert", alert("A1", "C1", "open"))  # a proximity alert: it would open the victim
        served.hub.publish("position", position("victim", "vic-1", "C1"))
        served.hub.publish("alert", alert("B1", "C1", "open", "battery_low"))
        served.hub.publish("gap", {})
        assert [(await ours.event())[0] for _ in range(3)] == [
            "alert",
            "alert",
            "gap",
        ]  # no victim: no purpose
        assert (await theirs.event())[0] == "gap"  # another unit's police sees nothing of C1
    opened = [(r.user_name, r.action, r.case_id) for r in audit.records]
    assert opened.count(("reclassering", "stream.case", "C1")) == 1  # once per stream and case
    assert {("elders", "stream.open", None), ("reclassering", "stream.open", None)} <= set(opened)
    assert not any(r.user_name == "elders" and r.action == "stream.case" for r in audit.records)


async def test_a_battery_alert_does_not_open_the_victim_on_the_stream(served: Served) -> None:
    async with (
        httpx.AsyncClient(base_url=served.base_url) as client,
        client.stream(
            "GET", "/api/v1/stream", params={"purpose": "alert_response"}, headers=bearer("tok-probation")
        ) as resp,
    ):
        sse = SseReader(resp)
        await sse.comment("connected")
        served.hub.publish("alert", alert("B1", "C1", "open", "battery_low"))
        served.hub.publish("position", position("victim", "vic-1", "C1"))
        served.hub.publish("alert", alert("A1", "C1", "open"))
        served.hub.publish("position", position("victim", "vic-1", "C1"))
        kinds = [(await sse.event()) for _ in range(3)]
        assert [k for k, _ in kinds] == ["alert", "alert", "position"]
        assert '"role":"victim"' in kinds[2][1]


async def test_only_listed_static_files_are_reachable(asgi: Served) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=asgi.app), base_url=asgi.base_url
    ) as client:
        ok = await client.get("/static/js/room/main.js")
        assert ok.status_code == 200 and ok.headers["content-type"].startswith("text/javascript")
        for bad in (
            "room.html",
            "..%2Fpages.py",
            "%2e%2e/stream.py",
            "nope.js",
            "js/../../pages.py",
            "vendor/README.md",
        ):
            assert (await client.get(f"/static/{bad}")).status_code == 404, bad


def test_tile_server_origin_joins_img_src_only() -> None:
    from emon.settings import Settings

    headers = pages.page_headers(Settings(map_tile_url="https://tiles.example.nl/brt/{z}/{x}/{y}.png"))
    csp = headers["Content-Security-Policy"]
    assert "img-src 'self' data: https://tiles.example.nl;" in csp
    assert csp.count("tiles.example.nl") == 1 and "connect-src 'self';" in csp
    assert "tiles" not in pages.page_headers(Settings())["Content-Security-Policy"]


@pytest.mark.parametrize(
    ("url", "problem"),
    [("ftp://x/{z}/{x}/{y}", "scheme"), ("https://tiles.example.nl/{z}/{x}.png", "{z}, {x} and {y}")],
)
def test_bad_tile_url_names_the_variable(url: str, problem: str) -> None:
    from emon.errors import ConfigError
    from emon.settings import Settings

    with pytest.raises(ConfigError) as err:
        Settings.from_env({"EMON_MAP_TILE_URL": url})
    assert err.value.variable == "EMON_MAP_TILE_URL" and problem in str(err.value)
