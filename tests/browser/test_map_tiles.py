"""With ``EMON_MAP_TILE_URL`` set, the map loads its base map from that server, which the page's
Content-Security-Policy then allows (for images only); without it, no tile is requested anywhere."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from emon.api.pages import STATIC_DIR
from tests.browser.conftest import js_errors, serving, sign_in, wait

pytestmark = pytest.mark.integration
TILE = (Path(STATIC_DIR) / "vendor" / "leaflet" / "images" / "layers.png").read_bytes()  # any PNG will do


class TileServer:
    def __init__(self) -> None:
        self.paths: list[str] = []
        paths = self.paths

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                paths.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(TILE)))
                self.end_headers()
                self.wfile.write(TILE)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> TileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def tiles() -> Iterator[TileServer]:
    with TileServer() as server:
        yield server


def test_base_map_comes_from_the_configured_tile_server(tiles: TileServer, browser: WebDriver) -> None:
    url = f"http://127.0.0.1:{tiles.port}/brt/{{z}}/{{x}}/{{y}}.png"
    with serving(map_tile_url=url, map_tile_attribution="Kaartgegevens © Kadaster") as server:
        sign_in(browser, server.url, "feasibility")
        wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#map img.leaflet-tile-loaded")) > 0)
        assert tiles.paths and all(p.startswith("/brt/") and p.endswith(".png") for p in tiles.paths)
        assert "Kadaster" in browser.find_element(By.CSS_SELECTOR, ".leaflet-control-attribution").text
        assert js_errors(browser) == []  # no CSP violation


def test_without_a_tile_url_the_map_is_a_plain_grid(tiles: TileServer, browser: WebDriver) -> None:
    with serving() as server:
        sign_in(browser, server.url, "feasibility")
        wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#map canvas.leaflet-tile")) > 0)
        assert (
            "EMON_MAP_TILE_URL" in browser.find_element(By.CSS_SELECTOR, ".leaflet-control-attribution").text
        )
        urls = browser.execute_script("return performance.getEntriesByType('resource').map((e) => e.name);")
        assert all(u.startswith(server.url) for u in urls) and tiles.paths == []
