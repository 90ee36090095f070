"""The OM enforceability page in a real browser: the inspection's case (500 m zone, residence 800 m
away) is NOT ENFORCEABLE with the 1,000 m guideline ring drawn; with the residence 2 km away it is
ENFORCEABLE. Zones are drawn by clicking the map, coordinates typed in RD."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.browser.conftest import Server, js_errors, screenshot, sign_in, wait

pytestmark = pytest.mark.integration
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "check-ban-inspection.json"


def _request(driver: WebDriver) -> str:
    """The request as the page would send it (its JSON view)."""
    return str(driver.find_element(By.ID, "json").get_attribute("value"))


def _verdict(driver: WebDriver) -> str:
    found = driver.find_elements(By.ID, "verdict")
    return str(found[0].text) if found else ""


def test_inspection_case_is_not_enforceable_and_two_km_away_is(server: Server, browser: WebDriver) -> None:
    sign_in(browser, server.url, "feasibility")
    browser.find_element(By.ID, "upload").send_keys(str(EXAMPLE))
    wait(browser, lambda d: "Woning slachtoffer" in _request(d))
    browser.find_element(By.ID, "check").click()
    wait(browser, lambda d: "NIET HANDHAAFBAAR" in _verdict(d))
    assert browser.find_element(By.ID, "map").get_attribute("data-guideline") == "1"
    labels = " ".join(e.text for e in browser.find_elements(By.CSS_SELECTOR, "#map .map-label"))
    assert "Richtlijn 1.000 m rond woning" in labels
    report = browser.find_element(By.ID, "report").text
    assert "RESIDENCE_TOO_CLOSE" in report and "hemelsbreed 300 m" in report
    assert "grootst mogelijke straal: geen vaste cirkel mogelijk" in report
    assert not re.search(r"(?<![\d-])-\s?\d", report), (
        report
    )  # no negative number, above all no negative radius
    screenshot(browser, "feasibility.png")
    # English report, same verdict.
    browser.find_element(By.ID, "lang").click()
    wait(browser, lambda d: "NOT ENFORCEABLE" in _verdict(d))
    assert "no fixed circle is possible" in browser.find_element(By.ID, "report").text
    browser.find_element(By.ID, "lang").click()

    # Move the residence 2 km from the zone's centre by typing RD coordinates.
    browser.find_element(By.CSS_SELECTOR, "[data-tool=residence]").click()
    browser.find_element(By.ID, "coords").send_keys("138000 456000\n")
    wait(browser, lambda d: '"x": 138000' in _request(d))
    browser.find_element(By.ID, "check").click()
    wait(browser, lambda d: _verdict(d).endswith(": HANDHAAFBAAR"))


def test_zones_are_drawn_on_the_map(server: Server, browser: WebDriver) -> None:
    sign_in(browser, server.url, "feasibility")
    browser.find_element(By.CSS_SELECTOR, "[data-tool=residence]").click()
    browser.find_element(By.ID, "coords").send_keys("52.10 5.10\n")
    browser.find_element(By.CSS_SELECTOR, "[data-tool=circle]").click()
    map_el = browser.find_element(By.ID, "map")
    browser.execute_script(
        "const r = arguments[0].getBoundingClientRect();"
        "arguments[0].dispatchEvent(new MouseEvent('click', {clientX: r.left + 60, clientY: r.top + 60, bubbles: true}));",
        map_el,
    )
    wait(browser, lambda d: "Cirkelzone 1" in _request(d))
    browser.find_element(By.CSS_SELECTOR, "[data-tool=polygon]").click()
    for dx, dy in ((300, 300), (400, 300), (400, 400)):
        browser.execute_script(
            "const r = arguments[0].getBoundingClientRect();"
            "arguments[0].dispatchEvent(new MouseEvent('click', {clientX: r.left + arguments[1], clientY: r.top + arguments[2], bubbles: true}));",
            map_el, dx, dy,
        )  # fmt: skip
    browser.find_element(By.ID, "finish-polygon").click()
    wait(browser, lambda d: "Veelhoekzone 1" in _request(d) and '"Polygon"' in _request(d))
    browser.find_element(By.ID, "check").click()
    wait(browser, lambda d: "HANDHAAFBAAR" in _verdict(d))
    assert js_errors(browser) == []


def test_a_suggested_smaller_circle_is_drawn(server: Server, browser: WebDriver) -> None:
    sign_in(browser, server.url, "feasibility")
    request = {
        "residence": {"rd": {"x": 138400, "y": 456000}},
        "order": {
            "exclusion_zones": [
                {"name": "School", "circle": {"rd": {"x": 136000, "y": 456000}, "radius_m": 1800}}
            ]
        },
        "protected_places": [{"name": "School", "position": {"rd": {"x": 136000, "y": 456000}}}],
    }
    browser.execute_script(
        "document.getElementById('json').value = arguments[0];document.getElementById('apply-json').click();",
        json.dumps(request),
    )
    browser.find_element(By.ID, "check").click()
    wait(browser, lambda d: "NIET HANDHAAFBAAR" in _verdict(d))
    assert int(browser.find_element(By.ID, "map").get_attribute("data-suggested") or 0) >= 1
    assert "Verklein zone 'School' tot een straal van 1.400 m" in browser.find_element(By.ID, "report").text
