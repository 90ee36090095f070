"""The probation case page in a real browser: create a case with a zone placed by coordinates, see
its expiry, edit the order with a reason, and see both versions (numbered, with reasons) in its history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.browser.conftest import Server, js_errors, sign_in, wait

pytestmark = pytest.mark.integration


async def _devices(server: Server) -> None:
    async with server.emon.client() as c:
        for device, kind in (("tag-3", "ankle_tag"), ("victim-3", "victim_device")):
            assert (
                await c.post("/api/v1/devices", json={"device_id": device, "kind": kind})
            ).status_code == 201


def test_create_and_edit_a_case_with_expiry_and_history(server: Server, browser: WebDriver) -> None:
    server.run(lambda: _devices(server))
    sign_in(browser, server.url, "casework")
    for field, value in (("case-id", "zaak-3"), ("offender-device", "tag-3"), ("victim-device", "victim-3")):
        browser.find_element(By.ID, field).send_keys(value)
    until = (datetime.now(UTC) + timedelta(days=30, hours=12)).strftime("%Y-%m-%dT%H:%M")
    browser.execute_script("document.getElementById('valid-until').value = arguments[0];", until)
    browser.find_element(By.CSS_SELECTOR, "[data-tool=residence]").click()
    browser.find_element(By.ID, "coords").send_keys("140000 456000\n")
    browser.find_element(By.CSS_SELECTOR, "[data-tool=circle]").click()
    browser.find_element(By.ID, "coords").send_keys("52.08 5.05\n")
    browser.find_element(By.ID, "save").click()
    wait(browser, lambda d: "zaak-3" in d.find_element(By.ID, "case-list").text)
    wait(browser, lambda d: "aangemaakt" in d.find_element(By.ID, "history").text)
    assert "loopt af over 30 dagen" in browser.find_element(By.ID, "expiry-text").text
    # Edit the zone's radius and save: a second history entry, the new radius stored.
    browser.execute_script(
        "const r = document.querySelector('#plan-items input.radius');"
        "r.value = '750'; r.dispatchEvent(new Event('change'));"
    )
    browser.find_element(By.ID, "change-reason").send_keys("verlengd door het OM")
    browser.find_element(By.ID, "save").click()
    wait(browser, lambda d: "gewijzigd" in d.find_element(By.ID, "history").text)
    history = browser.find_element(By.ID, "history").text
    assert "r 750 m" in history
    # The history is the order versions: numbered, with the reason given (or that none was).
    newest, oldest = browser.find_elements(By.CSS_SELECTOR, "#history li.version")
    assert newest.text.startswith("versie 2") and "verlengd door het OM" in newest.text
    assert oldest.text.startswith("versie 1") and "geen reden opgegeven" in oldest.text

    async def stored() -> float:
        async with server.emon.client() as c:
            doc = (await c.get("/api/v1/cases/zaak-3")).json()
            return float(doc["order"]["exclusion_zones"][0]["circle"]["radius_m"])

    assert server.run(stored) == 750
    assert js_errors(browser) == []
