"""The FastAPI application; its lifespan opens and closes the whole runtime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.middleware.body_limit import RequestBodyLimitMiddleware

from emon import __version__
from emon.api import alerts, audit, cases, devices, pages, room, session, stream, system, users
from emon.api import evidence as evidence_api
from emon.api import orders as orders_api
from emon.api import tasks as room_tasks
from emon.api.auth import Authenticator, Role
from emon.api.feasibility import make_router
from emon.api.gate import Gate, gate
from emon.api.limits import MAX_BODY_BYTES, JsonLimits, NoStore
from emon.errors import InvalidInput, NotFound, StorageError
from emon.runtime import Runtime
from emon.settings import Settings


def create_app(settings: Settings, runtime: Runtime | None = None) -> FastAPI:
    rt = runtime or Runtime(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await rt.open()
        try:
            yield
        finally:
            await rt.close()

    app = FastAPI(
        title="emon",
        version=__version__,
        summary="Electronic monitoring and proximity alerts",
        lifespan=lifespan,
        docs_url=None,  # served by emon.api.pages from local files (works offline)
        redoc_url=None,
    )
    app.add_middleware(NoStore)
    app.add_middleware(JsonLimits)
    # The last added is the outermost: size first (413, also when the body arrives in chunks), then JSON shape.
    app.add_middleware(RequestBodyLimitMiddleware, max_body_size=MAX_BODY_BYTES)
    app.state.rt = rt
    app.state.auth = session.CookieOrBearer(Authenticator(rt.users, rt.settings.admin_token))
    app.include_router(system.router)
    for module in (devices.router, cases.router, alerts.router, stream.router, room.router):
        app.include_router(module, prefix="/api/v1")
    for module in (users.router, audit.router, evidence_api.router, room_tasks.router, orders_api.router):
        app.include_router(module, prefix="/api/v1")
    app.include_router(pages.page_router)
    app.include_router(pages.api, prefix="/api/v1")
    app.include_router(session.router, prefix="/api/v1")
    feasibility = make_router(
        gate(Role.PROSECUTOR, Role.PROBATION), settings=rt.settings.feasibility, record=_record_feasibility
    )
    app.include_router(feasibility, prefix="/api/v1")
    _add_error_handlers(app)
    return app


async def _record_feasibility(g: Gate, detail: dict[str, Any]) -> None:
    await g.log("feasibility.check", detail=detail)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(InvalidInput)
    async def invalid(_: Request, exc: InvalidInput) -> JSONResponse:
        return JSONResponse({"error": "invalid_input", "message": str(exc)}, status_code=422)

    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"error": "not_found", "message": str(exc)}, status_code=404)

    @app.exception_handler(StorageError)
    async def storage(_: Request, exc: StorageError) -> JSONResponse:
        return JSONResponse(
            {"error": "storage_unavailable", "message": "storage is unavailable"}, status_code=503
        )
