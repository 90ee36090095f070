"""The monitoring room in a real browser: a breach published over MQTT shows up within seconds, with
its map drawn and an explanation in sentences; acknowledging works; the labels are complete in both
languages; signing in once holds across tabs and signing out ends it."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from emon.api.auth import token_hash
from emon.geo import destination
from emon.storage.audit import AuditQuery
from tests.browser.conftest import Server, js_errors, screenshot, sign_in, wait
from tests.harness import publish

pytestmark = pytest.mark.integration
VICTIM_AT = (52.3702, 4.8952)


async def _setup(server: Server) -> None:
    em = server.emon
    async with em.client() as c:
        for device, kind in (("tag-7", "ankle_tag"), ("victim-7", "victim_device")):
            assert (
                await c.post("/api/v1/devices", json={"device_id": device, "kind": kind})
            ).status_code == 201
        residence = destination(*VICTIM_AT, 200, 6000)
        case = {
            "case_id": "zaak-7", "risk": "high", "offender_device": "tag-7", "victim_device": "victim-7",
            "residence": {"lat": residence[0], "lon": residence[1]},
            "order": {
                "contact_ban_m": 300,
                "exclusion_zones": [
                    {"name": "Woning slachtoffer", "circle": {"lat": VICTIM_AT[0], "lon": VICTIM_AT[1], "radius_m": 500}}
                ],
            },
        }  # fmt: skip
        assert (await c.post("/api/v1/cases", json=case)).status_code == 201


async def _approach(server: Server) -> None:
    em = server.emon
    now = datetime.now(UTC)
    # Both devices report fresh fixes (a breach is proven by evidence over several fixes, docs/safety.md).
    for age_s in (20, 2):
        victim = {
            "ts": (now - timedelta(seconds=age_s)).isoformat(),
            "lat": VICTIM_AT[0],
            "lon": VICTIM_AT[1],
            "acc": 10,
        }
        await publish(em.topic("emon/v1/fix/victim-7"), json.dumps(victim))
    walk = [2400, 1600, 900, 400, 150, 100, 70, 50]
    for i, d in enumerate(walk):
        lat, lon = destination(*VICTIM_AT, 0, d)
        ts = now - timedelta(seconds=5 * (len(walk) - i))
        await publish(
            em.topic("emon/v1/fix/tag-7"),
            json.dumps({"ts": ts.isoformat(), "lat": lat, "lon": lon, "acc": 5}),
        )


def _rows(driver: WebDriver) -> list[str]:
    """The queue rows' texts, read in one go (the queue is re-rendered on every alert update)."""
    texts: list[str] = driver.execute_script(
        "return [...document.querySelectorAll('#queue .alert-row')].map((b) => b.innerText);"
    )
    return texts


def _click_row(driver: WebDriver, words: str) -> None:
    driver.execute_script(
        "[...document.querySelectorAll('#queue .alert-row')].find((b) => b.innerText.includes(arguments[0])).click();",
        words,
    )


@pytest.mark.timeout(90)
def test_breach_over_mqtt_appears_with_map_and_explanation_and_can_be_acknowledged(
    server: Server, browser: WebDriver
) -> None:
    server.run(lambda: _setup(server))
    sign_in(browser, server.url, "room")
    wait(browser, lambda d: "conn-live" in d.find_element(By.ID, "conn").get_attribute("class"))
    published = datetime.now(UTC)
    server.run(lambda: _approach(server))
    # The breach arrives over the live stream, without a reload.
    wait(browser, lambda d: any("Contactverbod" in r for r in _rows(d)), timeout=8)
    arrived_s = (datetime.now(UTC) - published).total_seconds()
    assert arrived_s < 8
    cue = browser.find_element(By.ID, "cue")
    assert cue.is_displayed() and "Nieuwe kritieke melding" in cue.text  # visual cue of a new critical alert
    row = next(r for r in _rows(browser) if "Contactverbod" in r)
    assert "KRITIEK" in row and "enkelband tag-7" in row  # priority in Dutch, the device named
    _click_row(browser, "Contactverbod")
    wait(browser, lambda d: d.find_element(By.ID, "map").get_attribute("data-drawn") == "zaak-7")
    # No purpose chosen yet (the page never fills one in): the victim is not drawn, and the page says why.
    purpose = Select(browser.find_element(By.ID, "purpose"))
    assert purpose.first_selected_option.get_attribute("value") == ""
    note = wait(
        browser,
        lambda d: (
            d.find_element(By.ID, "privacy-note").is_displayed()
            and d.find_element(By.ID, "privacy-note").text
        ),
    )
    assert "kies eerst een doel van inzage" in note
    labels = wait(
        browser, lambda d: " ".join(e.text for e in d.find_elements(By.CSS_SELECTOR, "#map .map-label"))
    )
    assert "Dader" in labels and "Slachtoffer" not in labels
    # The operator states why they look, as a person would: the map and the stream now show the victim.
    purpose.select_by_value("alert_response")
    # The map is drawn: Leaflet panes, the zone as a path, people with their accuracy circles.
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#map path.leaflet-interactive")) >= 4)
    labels = wait(
        browser,
        lambda d: (
            (t := " ".join(e.text for e in d.find_elements(By.CSS_SELECTOR, "#map .map-label")))
            and "Slachtoffer" in t
            and t
        ),
    )
    assert "Dader" in labels and "Slachtoffer" in labels and "Woning slachtoffer" in labels
    wait(browser, lambda d: not d.find_element(By.ID, "privacy-note").is_displayed())
    # The explanation is sentences: the rule, the fixes with time/accuracy/age, the distance, the verdict.
    text = wait(browser, lambda d: d.find_element(By.ID, "explanation").text)
    assert "Regel: contactverbod van 300 m." in text
    assert "Dader (enkelband tag-7): positie van" in text and "nauwkeurigheid ±5 m" in text
    assert "Afstand tussen dader en slachtoffer" in text
    assert "Bewezen" in text or "Alleen mogelijk" in text
    assert "emon waarschuwde:" in text and "meldkamer reclassering" in text
    assert "Geldende versie van de maatregel: 1." in text  # the alert names the order version in force
    assert not wait(browser, lambda d: [d.find_element(By.CSS_SELECTOR, "#raw pre").is_displayed()])[0]
    browser.execute_script(
        "document.querySelector('#raw summary').click();"
    )  # the raw JSON is behind a toggle
    wait(browser, lambda d: '"classification"' in d.find_element(By.CSS_SELECTOR, "#raw pre").text)
    screenshot(browser, "room.png")
    # Keyboard acknowledge: "a" on the selected alert.
    browser.find_element(By.TAG_NAME, "body").send_keys("a")
    wait(browser, lambda d: "bevestigd" in d.find_element(By.ID, "detail").text.lower())

    async def states() -> list[str]:
        async with server.emon.client() as c:
            return [a["state"] for a in (await c.get("/api/v1/alerts?case_id=zaak-7")).json()]

    assert "acknowledged" in server.run(states)

    async def purposes() -> list[str | None]:
        return [r.purpose for r in await server.emon.runtime.audit.query(AuditQuery(action="case.map"))]

    # Every map read is recorded with the purpose given (first without one, then alert_response).
    shown = server.run(purposes)
    assert shown[0] is None and "alert_response" in shown
    assert js_errors(browser) == []


def test_every_label_exists_in_dutch_and_english_and_the_dutch_view_has_no_english(
    server: Server, browser: WebDriver
) -> None:
    server.run(lambda: _setup(server))
    sign_in(browser, server.url, "room")
    wait(browser, lambda d: "conn-live" in d.find_element(By.ID, "conn").get_attribute("class"))
    server.run(lambda: _approach(server))
    wait(browser, lambda d: len(_rows(d)) >= 1, timeout=8)
    _click_row(browser, "")
    wait(browser, lambda d: d.find_elements(By.ID, "explanation"))
    vocab = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "import('./static/js/i18n.js').then((m) => done(m.VOCABULARIES));"
    )
    for name, table in vocab.items():
        assert set(table["nl"]) == set(table["en"]), (name, set(table["nl"]) ^ set(table["en"]))
        assert all(str(v).strip() for lang in ("nl", "en") for v in table[lang].values()), name
    # Every labelled element shows its Dutch label ...
    shown = browser.execute_script(
        "return [...document.querySelectorAll('[data-i18n]')].map((e) => [e.dataset.i18n, e.textContent]);"
    )
    labels = vocab["LABELS"]["nl"]
    assert shown and all(text == labels[key] for key, text in shown), [
        (k, t) for k, t in shown if t != labels[k]
    ]
    # ... and no English word of the vocabularies (where it differs from the Dutch) is on the page.
    body = browser.find_element(By.TAG_NAME, "body").text
    english = {
        str(v)
        for name, table in vocab.items()
        for k, v in table["en"].items()
        if v != table["nl"][k] and "{" not in str(v) and len(str(v)) > (5 if name == "LABELS" else 3)
    }
    leaked = sorted(w for w in english if w in body)
    assert leaked == []
    # Switching to English shows the English labels, priorities and recipients.
    browser.find_element(By.ID, "lang").click()
    wait(browser, lambda d: "Monitoring room" in d.find_element(By.TAG_NAME, "body").text)
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "CRITICAL" in body and "probation monitoring room" in body and "Contact ban: too close" in body
    assert js_errors(browser) == []


def test_sign_in_once_holds_across_tabs_and_sign_out_ends_it_everywhere(
    server: Server, browser: WebDriver
) -> None:
    sign_in(browser, server.url, "room")
    wait(browser, lambda d: "bootstrap-admin" in d.find_element(By.ID, "who").text)
    first = browser.current_window_handle
    # The token is nowhere the page's scripts can read it: not in storage, not in a readable cookie.
    stored = browser.execute_script(
        "return JSON.stringify([document.cookie, {...localStorage}, {...sessionStorage}, location.href]);"
    )
    assert "test-admin-token" not in stored and "emon_session" not in stored
    browser.switch_to.new_window("tab")
    browser.get(f"{server.url}/room")
    wait(browser, lambda d: "bootstrap-admin" in d.find_element(By.ID, "who").text)
    assert not browser.execute_script("return document.getElementById('login').open")
    # A state-changing call from the page carries the CSRF token; the same call without it is refused.
    status = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch('api/v1/alerts/none/ack', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{}'})"
        ".then((r) => done(r.status));"
    )
    assert status == 403
    browser.find_element(By.ID, "logout").click()
    wait(browser, lambda d: d.execute_script("return document.getElementById('login').open"))
    browser.switch_to.window(first)
    wait(browser, lambda d: d.execute_script("return document.getElementById('login').open"))
    status = browser.execute_async_script(
        "const done = arguments[arguments.length - 1]; fetch('api/v1/alerts').then((r) => done(r.status));"
    )
    assert status == 401


def test_queue_order_deadline_first_within_priority_and_grouped_by_episode(
    server: Server, browser: WebDriver
) -> None:
    browser.get(f"{server.url}/room")
    now = 1_800_000_000_000  # ms; time is an argument of the ordering

    def alert(
        aid: str, prio: str, age_s: int, state: str = "open", case: str = "c1", episode: str = ""
    ) -> dict[str, str]:
        opened = datetime.fromtimestamp((now - age_s * 1000) / 1000, UTC).isoformat()
        return {"alert_id": aid, "priority": prio, "state": state, "case_id": case,
                "opened_at": opened, "episode": episode or aid}  # fmt: skip

    alerts = [
        alert("A", "critical", 10),  # 50 s left
        alert("B", "critical", 30, case="c2"),  # 30 s left: runs out first
        alert("C", "critical", 120, case="c3", episode="e3"),  # 60 s overdue: already escalated
        alert("D", "high", 5),  # lower priority, whatever its deadline
        alert("E", "critical", 40, state="acknowledged"),  # acknowledged: after everything open
        alert("F", "normal", 1, case="c3", episode="e3"),  # same case and episode as C: grouped with it
        alert("G", "low", 500),  # no deadline for low
    ]
    groups = browser.execute_async_script(
        "const [alerts, now, done] = arguments;"
        "import('./static/js/room/queue.js').then((q) => done("
        "  q.ordered(alerts, {critical: 60, high: 300, normal: 1800, low: 0}, now).map((g) => g.map((a) => a.alert_id))));",
        alerts, now,
    )  # fmt: skip
    assert groups == [["B"], ["A"], ["C", "F"], ["D"], ["G"], ["E"]]


async def _task(server: Server) -> str:
    """An open room task of zaak-7 (as the alert service files it), due in 62 s."""
    from emon.alerts.types import Priority
    from emon.tasks.model import TaskKind, new_task

    em = server.emon
    task = new_task(TaskKind.INFORM_VICTIM, "zaak-7", None, Priority.CRITICAL, datetime.now(UTC), 62)
    async with em.runtime.db.pool.connection() as conn, conn.transaction():
        assert await em.runtime.alerts.tasks.create(conn, task, datetime.now(UTC)) is not None
    em.runtime.alerts.tasks.published([task])  # the `task` event on the stream
    return task.task_id


def test_room_tasks_are_listed_live_with_a_countdown_and_closed_with_a_note(
    server: Server, browser: WebDriver
) -> None:
    server.run(lambda: _setup(server))
    sign_in(browser, server.url, "room")
    wait(browser, lambda d: "conn-live" in d.find_element(By.ID, "conn").get_attribute("class"))
    assert browser.find_element(By.ID, "tasks-empty").is_displayed()
    task_id = server.run(lambda: _task(server))
    # It arrives over the stream, without a reload: what to do, which case, how long is left. The list
    # re-renders every second (the countdown), so every look finds the row anew.
    row_css = f"#tasks [data-task='{task_id}']"

    def text(css: str) -> str:
        return str(
            browser.execute_script(
                "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';", css
            )
        )

    wait(browser, lambda d: text(row_css), timeout=8)
    row_text = text(row_css)
    assert "Slachtoffer telefonisch informeren" in row_text and "zaak-7" in row_text and "KRITIEK" in row_text
    countdown = f"{row_css} .task-countdown"
    first = text(countdown)
    assert first in ("1 min", "59 s", "58 s"), first
    second = wait(
        browser, lambda d: text(countdown) != first and text(countdown), timeout=5
    )  # it counts down …
    assert second.endswith(" s")
    wait(browser, lambda d: text(countdown) != second, timeout=3)  # … every second
    # "Gedaan" asks for a note; done, the task leaves the list and the service has it with the note.
    browser.execute_script("document.querySelector(arguments[0]).click();", f"{row_css} .task-done")
    wait(browser, lambda d: d.find_element(By.ID, "task-dialog").is_displayed())
    browser.find_element(By.ID, "task-note").send_keys("slachtoffer gebeld, veilig")
    browser.find_element(By.CSS_SELECTOR, "#task-form button[type=submit]").click()
    wait(browser, lambda d: not d.find_elements(By.CSS_SELECTOR, f"#tasks [data-task='{task_id}']"))

    async def stored() -> dict[str, object]:
        async with server.emon.client() as c:
            task: dict[str, object] = (await c.get(f"/api/v1/tasks/{task_id}")).json()
            return task

    task = server.run(stored)
    assert (
        task["state"] == "done"
        and task["note"] == "slachtoffer gebeld, veilig"
        and task["done_by"] == "bootstrap-admin"
    )
    # The same list in English.
    server.run(lambda: _task_again(server))
    browser.find_element(By.ID, "lang").click()
    wait(
        browser,
        lambda d: (
            "Check" in d.find_element(By.ID, "tasks").text or "Obtain" in d.find_element(By.ID, "tasks").text
        ),
    )
    assert browser.find_element(By.ID, "tasks-title").text.lower() == "tasks"
    assert js_errors(browser) == []


async def _task_again(server: Server) -> None:
    from emon.alerts.types import Priority
    from emon.tasks.model import TaskKind, new_task

    em = server.emon
    task = new_task(TaskKind.CHECK_POSSIBLE, "zaak-7", None, Priority.HIGH, datetime.now(UTC), 300)
    async with em.runtime.db.pool.connection() as conn, conn.transaction():
        await em.runtime.alerts.tasks.create(conn, task, datetime.now(UTC))
    em.runtime.alerts.tasks.published([task])


def test_a_revoked_token_ends_the_stream_shows_sign_in_and_does_not_reconnect(
    server: Server, browser: WebDriver
) -> None:
    token = server.run(lambda: server.emon.token_for("probation", name="kamer-1"))
    sign_in(browser, server.url, "room", token)
    wait(browser, lambda d: "conn-live" in d.find_element(By.ID, "conn").get_attribute("class"))

    async def revoke() -> None:
        async with server.emon.runtime.db.pool.connection() as conn:
            await conn.execute(
                "UPDATE api_tokens SET revoked_at = now() WHERE token_sha256 = %s", (token_hash(token),)
            )

    server.run(revoke)
    # The server ends the stream (event: end) within its 2 s re-check: the page stops and asks to sign in.
    wait(browser, lambda d: d.execute_script("return document.getElementById('login').open"), timeout=8)
    # Whichever the page hears first — the stream's ``event: end`` or a 401 on its next REST call — it
    # says the access is gone; both are the server refusing the revoked token.
    said = browser.find_element(By.ID, "login-error").text
    assert "Uw toegang is beëindigd" in said or "Token ongeldig" in said, said
    assert "conn-off" in browser.find_element(By.ID, "conn").get_attribute("class")
    # No reconnect: the connection state stays "off" (a retry would show "reconnecting") and nothing is fetched.
    for _ in range(15):  # 3 s: longer than the first reconnect delay (0.5–1 s)
        assert "conn-off" in browser.find_element(By.ID, "conn").get_attribute("class")
        time.sleep(0.2)
    assert browser.execute_script("return document.getElementById('login').open")
