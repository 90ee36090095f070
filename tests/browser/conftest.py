"""Browser tests: a real emon (uvicorn in a background thread, on its own schema, Redis prefix and MQTT
topic prefix) and Debian's headless Chromium driven by Selenium through chromedriver.

Browser and driver paths are given explicitly and ``SE_OFFLINE=true`` is set, so Selenium Manager
never tries to download anything. ``EMON_SCREENSHOTS=1`` writes screenshots to ``docs/img/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.harness import ADMIN_TOKEN, Running, cleanup, isolated_settings, start

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "img"
T = TypeVar("T")


@dataclass
class Server:
    """A running emon and the event loop (in its own thread) it runs on."""

    emon: Running
    loop: asyncio.AbstractEventLoop

    @property
    def url(self) -> str:
        return self.emon.base_url

    def run(self, make: Callable[[], Awaitable[T]], timeout: float = 30) -> T:
        """Run a coroutine on the server's loop from the (synchronous) test and return its result."""
        future: Future[T] = asyncio.run_coroutine_threadsafe(_wrap(make), self.loop)
        return future.result(timeout)


async def _wrap(make: Callable[[], Awaitable[T]]) -> T:
    return await make()


@contextlib.contextmanager
def serving(**overrides: Any) -> Iterator[Server]:
    """A real emon with ``overrides`` on its settings, on an event loop in a background thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="emon-under-test", daemon=True)
    thread.start()
    settings = isolated_settings(**overrides)
    emon = asyncio.run_coroutine_threadsafe(start(settings), loop).result(60)
    srv = Server(emon, loop)
    try:
        yield srv
    finally:
        srv.run(emon.stop)
        srv.run(lambda: cleanup(settings))
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture
def server() -> Iterator[Server]:
    with serving() as srv:
        yield srv


def _options(profile: str) -> webdriver.ChromeOptions:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", "--autoplay-policy=no-user-gesture-required",
        "--window-size=1600,1000", "--lang=nl-NL", f"--user-data-dir={profile}",
    ):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return options


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail(
            "Chromium and chromedriver are missing: run scripts/services (apt-get install chromium chromium-driver)"
        )
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never download a browser or driver
    profile = tempfile.mkdtemp(prefix="emon-chromium-")
    driver = webdriver.Chrome(options=_options(profile), service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait(driver: WebDriver, condition: Callable[[WebDriver], Any], timeout: float = 10) -> Any:
    """Poll ``condition`` until truthy; an element replaced by a re-render meanwhile is simply retried."""
    return WebDriverWait(
        driver, timeout, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)
    ).until(condition)


def sign_in(driver: WebDriver, base_url: str, page: str, token: str = ADMIN_TOKEN) -> None:
    """Open ``page`` and sign in through the dialog."""
    driver.get(f"{base_url}/{page}")
    wait(driver, lambda d: d.execute_script("return document.getElementById('login').open"))
    driver.find_element("id", "token").send_keys(token)
    driver.find_element("css selector", "#login-form button[type=submit]").click()
    wait(driver, lambda d: not d.execute_script("return document.getElementById('login').open"))


def js_errors(driver: WebDriver) -> list[str]:
    """Console errors of the page so far (a failed script shows here, not as an exception)."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def screenshot(driver: WebDriver, name: str) -> None:
    if os.environ.get("EMON_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(SCREENSHOTS / name))
