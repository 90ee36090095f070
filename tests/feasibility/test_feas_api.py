"""``POST /feasibility`` on a tiny app with a stand-in for the lead's auth dependency."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from datetime import UTC, datetime

from fastapi import FastAPI, HTTPException

from emon.api.feasibility import make_router
from emon.feasibility import FeasibilitySettings, check, parse_request

from .helpers import CITIES, at, circle, request

with warnings.catch_warnings():
    # starlette 1.x prefers httpx2 for its TestClient; the pinned httpx 0.28 still works.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
VICTIM = CITIES["utrecht_nl"]
INSPECTION = request(at(VICTIM, 90, 800), [circle("Woning", VICTIM, 500)], protected=[("Woning", VICTIM)])


def _client(dependency: Callable[[], None] | None = None) -> tuple[TestClient, list[str]]:
    calls: list[str] = []

    def allow() -> None:
        calls.append("checked")

    app = FastAPI()
    router = make_router(dependency or allow, settings=FeasibilitySettings(), clock=lambda: NOW)
    app.include_router(router, prefix="/api/v1")
    return TestClient(app), calls


def test_report_is_the_same_json_as_the_core() -> None:
    client, calls = _client()
    response = client.post("/api/v1/feasibility", json=INSPECTION)
    assert response.status_code == 200
    expected = check(parse_request(INSPECTION), FeasibilitySettings(), NOW).to_dict()
    assert response.json() == expected
    assert response.json()["enforceable"] is False
    assert calls == ["checked"]


def test_invalid_input_is_422_naming_the_field() -> None:
    client, _ = _client()
    bad = {**INSPECTION, "residence": {"lat": 91, "lon": 5}}
    response = client.post("/api/v1/feasibility", json=bad)
    assert response.status_code == 422
    assert response.json() == {
        "error": "invalid_input",
        "field": "residence.lat",
        "message": "Input should be less than or equal to 90",
    }


def test_invalid_json_is_422() -> None:
    client, _ = _client()
    response = client.post(
        "/api/v1/feasibility", content=b"{oops", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_input" and response.json()["field"] == "body"


def test_dependency_guards_the_route() -> None:
    def deny() -> None:
        raise HTTPException(403, "prosecutor, probation or admin only")

    client, _ = _client(deny)
    assert client.post("/api/v1/feasibility", json=INSPECTION).status_code == 403
