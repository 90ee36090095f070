"""``/docs`` renders from local files: no request leaves this origin."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.browser.conftest import Server, js_errors, wait

pytestmark = pytest.mark.integration


def test_docs_render_offline_from_local_assets(server: Server, browser: WebDriver) -> None:
    browser.get(f"{server.url}/docs")
    wait(
        browser,
        lambda d: "emon" in d.find_element(By.CSS_SELECTOR, ".swagger-ui .info .title").text,
        timeout=15,
    )
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) > 10)
    urls = browser.execute_script("return performance.getEntriesByType('resource').map((e) => e.name);")
    assert urls and all(u.startswith(server.url) for u in urls), urls
    assert js_errors(browser) == []
