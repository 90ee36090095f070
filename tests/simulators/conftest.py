"""Shared helpers for the simulator tests: a tiny scenario and unique MQTT topic prefixes."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import pytest

from simulators.scenario import Scenario

HOME = (52.0880, 5.1370)


def tiny_doc(**overrides: Any) -> dict[str, Any]:
    """A 60-second scenario: a tag with a coverage gap and an OwnTracks victim phone; 100x."""
    doc: dict[str, Any] = {
        "name": "tiny",
        "description": "test",
        "seed": 42,
        "duration_s": 60,
        "time_compression": 100,
        "case": {
            "case_id": "t-case",
            "risk": "high",
            "offender_device": "t-tag",
            "victim_device": "t-phone",
            "residence": {"lat": 52.1160, "lon": 5.1100},
            "order": {"contact_ban_m": 500},
        },
        "devices": [
            {
                "device_id": "t-tag",
                "kind": "ankle_tag",
                "report_interval_s": 10,
                "behaviour": {
                    "route": {
                        "mode": "walk",
                        "waypoints": [{"lat": 52.09, "lon": 5.12}, {"lat": 52.091, "lon": 5.121}],
                    },
                    "gaps": [{"start_s": 20, "end_s": 40}],
                    "events": [{"at_s": 25, "type": "tamper"}],
                },
            },
            {
                "device_id": "t-phone",
                "kind": "victim_device",
                "owntracks_topic": "owntracks/victim/phone",
                "report_interval_s": 15,
                "behaviour": {
                    "route": {"waypoints": [{"lat": HOME[0], "lon": HOME[1], "env": "indoor"}]},
                    "ack": {"delay_s": 10},
                },
            },
        ],
        "expect": [{"type": "proximity_breach", "recipient": "victim", "within_s": 60}],
        "expect_none_of": ["exclusion_breach"],
    }
    doc.update(overrides)
    return doc


@pytest.fixture
def make_doc() -> Callable[..., dict[str, Any]]:
    """``make_doc(seed=43)``: the tiny scenario document with top-level fields replaced."""
    return tiny_doc


@pytest.fixture
def tiny() -> Scenario:
    return Scenario.model_validate(tiny_doc())


@pytest.fixture
def prefix() -> str:
    """A topic prefix of its own for each MQTT test, so tests never see each other's messages."""
    return f"test-sim-{secrets.token_hex(4)}"
