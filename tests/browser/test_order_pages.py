"""The order lifecycle on the pages, in a real browser: the case page lists the orders that end within
14 days (with the days left), open-ended ones and those ended without a decision, each linking to its
case; an opened case shows its order's kind, decision, term and whether it is in force; the room labels
the ``order_expired`` alert and shows a banner while the selected case has no order in force."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.select import Select

from tests.browser.conftest import Server, js_errors, serving, sign_in, wait

pytestmark = pytest.mark.integration
DAY = timedelta(days=1)


@pytest.fixture
def server() -> Iterator[Server]:
    # The lifecycle runs often, so an order that has ended raises its ``order_expired`` alert at once.
    with serving(order_tick_s=0.5) as srv:
        yield srv


def _case(case_id: str, tag: str, order: dict[str, object]) -> dict[str, object]:
    zone = {"name": "Woning slachtoffer", "circle": {"lat": 52.09, "lon": 5.12, "radius_m": 500}}
    return {"case_id": case_id, "risk": "high", "offender_device": tag, "residence": {"lat": 52.06, "lon": 5.05},
            "order": {"exclusion_zones": [zone], **order}}  # fmt: skip


async def _setup(server: Server) -> None:
    now = datetime.now(UTC)
    decision = {
        "authority": "OM Amsterdam",
        "reference": "13/123456-26",
        "date": (now - 30 * DAY).isoformat(),
    }
    cases = [
        # ends in 5 days (and an hour, so the page's whole days read 5)
        _case("zaak-soon", "tag-soon", {"kind": "gedragsaanwijzing", "decision": decision,
              "valid_from": (now - 30 * DAY).isoformat(), "valid_until": (now + 5 * DAY + timedelta(hours=1)).isoformat()}),
        # ended an hour ago, without a decision
        _case("zaak-ended", "tag-ended", {"valid_from": (now - 60 * DAY).isoformat(),
              "valid_until": (now - timedelta(hours=1)).isoformat()}),
        _case("zaak-open", "tag-open", {}),  # no end date
    ]  # fmt: skip
    async with server.emon.client() as c:
        for case in cases:
            r = await c.post(
                "/api/v1/devices", json={"device_id": case["offender_device"], "kind": "ankle_tag"}
            )
            assert r.status_code == 201, r.text
            r = await c.post("/api/v1/cases", json=case)
            assert r.status_code == 201, r.text


def _text(driver: WebDriver, element_id: str) -> str:
    text: str = driver.execute_script(
        "const e = document.getElementById(arguments[0]); return e ? e.innerText : '';", element_id
    )
    return text


def _selected(d: WebDriver) -> str:
    """The case the page shows as selected in its case list ("" while none)."""
    found = d.find_elements(By.CSS_SELECTOR, "#case-list button.selected")
    return found[0].text if found else ""


def _group(driver: WebDriver, group: str) -> str:
    text: str = driver.execute_script(
        "const g = document.querySelector(`#expiring [data-group=${arguments[0]}]`); return g ? g.innerText : '';",
        group,
    )
    return text


@pytest.mark.timeout(90)
def test_the_case_page_lists_expiring_orders_and_shows_whether_an_order_is_in_force(
    server: Server, browser: WebDriver
) -> None:
    server.run(lambda: _setup(server))
    sign_in(browser, server.url, "casework")
    wait(browser, lambda d: "zaak-soon" in _group(d, "expiring"))
    soon = _group(browser, "expiring")
    assert "zaak-soon" in soon and "nog 5 dagen" in soon and "zaak-ended" not in soon
    assert "zaak-open" in _group(browser, "open_ended")
    assert "zaak-ended" in _group(browser, "expired_without_decision")
    # The expiring entry links to its case: kind, decision, term and "in force".
    browser.find_element(By.CSS_SELECTOR, "#expiring [data-case=zaak-soon] a").click()
    wait(browser, lambda d: "13/123456-26" in _text(d, "order-status"))
    status = _text(browser, "order-status")
    assert "gedragsaanwijzing" in status and "OM Amsterdam" in status and "Termijn" in status
    assert _text(browser, "order-in-force") == "van kracht"
    # The ended one says so visibly, in Dutch and in English.
    browser.find_element(By.CSS_SELECTOR, "#expiring [data-case=zaak-ended] a").click()
    wait(browser, lambda d: "geen maatregel van kracht" in _text(d, "order-in-force"))
    assert browser.find_element(By.ID, "order-in-force").is_displayed()
    assert "geen besluit vastgelegd" in _text(browser, "order-status")
    browser.find_element(By.ID, "lang").click()
    wait(browser, lambda d: "no order in force" in _text(d, "order-in-force"))
    heading = browser.find_element(By.CSS_SELECTOR, "[data-i18n=cw_expiring]").get_attribute("textContent")
    assert heading == "Orders expiring"
    assert "5 days left" in _group(browser, "expiring")
    assert js_errors(browser) == []


def _rows(driver: WebDriver) -> list[str]:
    texts: list[str] = driver.execute_script(
        "return [...document.querySelectorAll('#queue .alert-row')].map((b) => b.innerText);"
    )
    return texts


@pytest.mark.timeout(90)
def test_the_room_labels_an_expired_order_and_shows_that_no_order_is_in_force(
    server: Server, browser: WebDriver
) -> None:
    server.run(lambda: _setup(server))
    sign_in(browser, server.url, "room")
    wait(browser, lambda d: "conn-live" in d.find_element(By.ID, "conn").get_attribute("class"))
    # The lifecycle ends zaak-ended's order without a decision: the alert order_expired, labelled.
    wait(browser, lambda d: any("Maatregel verlopen zonder verlenging" in r for r in _rows(d)), timeout=20)
    banner = browser.find_element(By.ID, "order-banner")
    assert not banner.is_displayed()
    browser.execute_script(
        "[...document.querySelectorAll('#queue .alert-row')]"
        ".find((b) => b.innerText.includes('Maatregel verlopen zonder verlenging')).click();"
    )
    wait(browser, lambda d: d.find_element(By.ID, "order-banner").is_displayed())
    assert banner.text == "Geen maatregel van kracht — overtredingen worden niet gehandhaafd"
    # zaak-soon's reminder is a room task with its own label.
    wait(browser, lambda d: "Maatregel loopt af: besluit nodig" in _text(d, "tasks"), timeout=20)

    # An ``order`` event on the stream changes the banner of the case on screen at once.
    def publish(in_force: bool) -> None:
        async def go() -> None:
            server.emon.runtime.hub.publish("order", {"case_id": "zaak-ended", "in_force": in_force})

        server.run(go)

    publish(True)
    wait(browser, lambda d: not d.find_element(By.ID, "order-banner").is_displayed())
    publish(False)
    wait(browser, lambda d: d.find_element(By.ID, "order-banner").is_displayed())
    browser.find_element(By.ID, "lang").click()
    wait(
        browser,
        lambda d: (
            d.find_element(By.ID, "order-banner").text == "No order in force — violations are not enforced"
        ),
    )
    assert any("Order expired unextended" in r for r in _rows(browser))
    assert "Order ending: decision needed" in _text(browser, "tasks")
    assert js_errors(browser) == []


@pytest.mark.timeout(90)
def test_the_case_page_records_a_decision_on_the_end_of_an_order(server: Server, browser: WebDriver) -> None:
    server.run(lambda: _setup(server))
    sign_in(browser, server.url, "casework")
    wait(browser, lambda d: "zaak-soon" in _group(d, "expiring"))
    # An open-ended order has no end to decide about: no form.
    browser.find_element(By.CSS_SELECTOR, "#expiring [data-case=zaak-open] a").click()
    wait(browser, lambda d: "zonder einddatum" in _text(d, "order-status"))
    assert not browser.find_element(By.ID, "decision-form").is_displayed()
    browser.find_element(By.CSS_SELECTOR, "#expiring [data-case=zaak-soon] a").click()
    wait(browser, lambda d: d.find_element(By.ID, "decision-form").is_displayed())
    new_end = datetime.now(UTC) + 90 * DAY
    browser.execute_script(
        "const d = new Date(arguments[0]);"
        "document.getElementById('decision-until').value = "
        "new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);",
        new_end.isoformat(),
    )
    browser.find_element(By.ID, "decision-reason").send_keys("verlengd door de rechter, zaak 13/123456-26")
    browser.find_element(By.ID, "decide").click()
    wait(browser, lambda d: "Besluit vastgelegd" in _text(d, "info"))
    decisions = _text(browser, "order-decisions")
    assert "verlengd" in decisions and "verlengd door de rechter" in decisions

    # The extension is real: a new order version whose term ends at the new end, off the expiring list.
    async def stored() -> tuple[str, list[str]]:
        async with server.emon.client() as c:
            order = (await c.get("/api/v1/cases/zaak-soon/order")).json()
            expiring = (await c.get("/api/v1/orders/expiring", params={"within": "14d"})).json()
        return order["valid_until"], [i["case_id"] for i in expiring["expiring"]]

    until, expiring = server.run(stored)
    assert abs(datetime.fromisoformat(until) - new_end) < timedelta(minutes=1)
    assert "zaak-soon" not in expiring
    wait(browser, lambda d: "zaak-soon" not in _group(d, "expiring"))
    # Letting the ended order expire is recorded too, without a new end.
    browser.find_element(By.CSS_SELECTOR, "#expiring [data-case=zaak-ended] a").click()
    wait(browser, lambda d: "geen maatregel van kracht" in _text(d, "order-in-force"))
    # Opening a case renders its order, then its history and the case list (marking it selected) while
    # the page lays out: act once the opening is complete.
    wait(browser, lambda d: _selected(d).startswith("zaak-ended"))
    wait(browser, lambda d: d.find_element(By.ID, "decision-form").is_displayed())
    Select(browser.find_element(By.ID, "decision-kind")).select_by_value("let_expire")
    assert not browser.find_element(By.ID, "decision-until").is_displayed()
    browser.find_element(By.ID, "decision-reason").send_keys("geen grond voor verlenging")
    browser.find_element(By.ID, "decide").click()
    wait(browser, lambda d: "laten aflopen" in _text(d, "order-decisions"))
    wait(browser, lambda d: "zaak-ended" not in _group(d, "expired_without_decision"))
    assert js_errors(browser) == []
