"""The pages people use: monitoring room, OM enforceability check, probation cases, API docs.

Every page is a static HTML file under ``static/`` with its scripts and styles beside it; nothing is
loaded from another host (the map library and Swagger UI are kept under ``static/vendor/``). The
only other origin a page may reach is the operator's map-tile server (``EMON_MAP_TILE_URL``), whose
origin is then added to ``img-src`` of the Content-Security-Policy.

``GET /api/v1/pages/config`` (no token; nothing secret) tells the pages the tile URL, the
acknowledgement deadlines per priority and the guideline distance (1,000 m). The case page's history is
``GET /api/v1/cases/{id}/versions`` (:mod:`emon.api.evidence`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import FileResponse, HTMLResponse

from emon.alerts.types import Priority
from emon.feasibility.settings import FeasibilitySettings
from emon.settings import Settings

STATIC_DIR = Path(__file__).parent / "static"
MEDIA_TYPES: Mapping[str, str] = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".wav": "audio/wav",
}
# page path -> its HTML file
PAGES: Mapping[str, str] = {
    "/room": "room.html",
    "/feasibility": "feasibility.html",
    "/casework": "casework.html",
    "/docs": "docs.html",
}


def static_files(root: Path = STATIC_DIR) -> dict[str, str]:
    """Every servable file under ``root`` (relative POSIX path -> media type); nothing else is reachable."""
    out: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        media = MEDIA_TYPES.get(path.suffix)
        if media is not None and path.is_file():
            out[path.relative_to(root).as_posix()] = media
    return out


STATIC_FILES: Mapping[str, str] = static_files()


def tile_origin(settings: Settings | None) -> str | None:
    """``scheme://host[:port]`` of the configured tile URL, or None."""
    url = getattr(settings, "map_tile_url", None)
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def page_headers(settings: Settings | None) -> dict[str, str]:
    """Security headers of every page and asset: only this origin, plus the tile server for images."""
    origin = tile_origin(settings)
    img = "img-src 'self' data:" + (f" {origin}" if origin else "")
    return {
        "Content-Security-Policy": (
            f"default-src 'none'; script-src 'self'; style-src 'self'; {img}; media-src 'self' data:; "
            "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }


def _settings(request: Request) -> Settings | None:
    rt = getattr(request.app.state, "rt", None)
    settings: Settings | None = getattr(rt, "settings", None)
    return settings


page_router = APIRouter(include_in_schema=False)
api = APIRouter(tags=["pages"])


def _page(name: str) -> Any:
    async def serve(request: Request) -> HTMLResponse:
        html = (STATIC_DIR / name).read_text(encoding="utf-8")
        return HTMLResponse(html, headers=page_headers(_settings(request)))

    return serve


for _path, _file in PAGES.items():
    page_router.add_api_route(_path, _page(_file), methods=["GET"])


@page_router.get("/static/{path:path}")
async def asset(path: str, request: Request) -> FileResponse:
    """One file of the pages; any path not in :data:`STATIC_FILES` is a 404 (no traversal, no listing)."""
    media = STATIC_FILES.get(path)
    if media is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
    return FileResponse(STATIC_DIR / path, media_type=media, headers=page_headers(_settings(request)))


@api.get("/pages/config")
async def pages_config(request: Request) -> dict[str, Any]:
    """What the pages need to know: the tile URL and attribution, and the ack deadline (s) per priority."""
    settings = _settings(request)
    rt = getattr(request.app.state, "rt", None)
    alerts = getattr(rt, "alerts", None)
    config = getattr(alerts, "config", None)
    deadlines = {p.value: config.ack_deadline_s(p) for p in Priority} if config is not None else {}
    return {
        "guideline_m": (settings.feasibility if settings is not None else FeasibilitySettings()).guideline_m,
        "tile_url": getattr(settings, "map_tile_url", None),
        "tile_attribution": getattr(settings, "map_tile_attribution", ""),
        "ack_deadline_s": deadlines,
    }
