"""The pure core: movement, noise, the action stream and the scenario library."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from emon.geo import geodesic_m
from simulators.movement import Track
from simulators.noise import read
from simulators.scenario import Noise, Route, Scenario, anchored_case, library, load_scenario
from simulators.stream import ack_payload, build_actions

DocFactory = Callable[..., dict[str, Any]]

START = datetime(2026, 3, 2, 21, 0, 30, tzinfo=UTC)


def test_same_seed_gives_byte_identical_stream(tiny: Scenario, make_doc: DocFactory) -> None:
    a = build_actions(tiny, start=START, prefix="p")
    b = build_actions(Scenario.model_validate(make_doc()), start=START, prefix="p")
    assert [(x.at_s, x.topic, x.payload) for x in a] == [(x.at_s, x.topic, x.payload) for x in b]
    c = build_actions(Scenario.model_validate(make_doc(seed=43)), start=START, prefix="p")
    assert [x.payload for x in a] != [x.payload for x in c]


def test_stream_is_time_ordered_and_prefixed(tiny: Scenario) -> None:
    actions = build_actions(tiny, start=START, prefix="p/q")
    assert [a.at_s for a in actions] == sorted(a.at_s for a in actions)
    assert all(a.topic.startswith("p/q/") for a in actions)
    assert {a.topic for a in actions} == {
        "p/q/emon/v1/fix/t-tag",
        "p/q/emon/v1/event/t-tag",
        "p/q/owntracks/victim/phone",
    }


def test_fix_ts_is_start_plus_compressed_time(tiny: Scenario) -> None:
    fixes = [a for a in build_actions(tiny, start=START) if a.kind == "fix"]
    for a in fixes:
        body = json.loads(a.payload)
        assert datetime.fromisoformat(body["ts"]) == START + timedelta(seconds=a.at_s / 100)
        assert set(body) >= {"ts", "lat", "lon", "acc", "seq", "batt", "src", "spd"}


def test_gap_is_uploaded_as_one_array_at_its_end_then_buffered_events(tiny: Scenario) -> None:
    tag = [a for a in build_actions(tiny, start=START) if a.device_id == "t-tag"]
    # fixes every 10 s: 0,10 live; 20,30 buffered; batch at 40; then 40, 50 live
    assert [(a.at_s, a.kind) for a in tag] == [
        (0, "fix"), (10, "fix"), (40, "batch"), (40, "event"), (40, "fix"), (50, "fix"),
    ]  # fmt: skip
    batch = json.loads(tag[2].payload)
    assert [f["seq"] for f in batch] == [3, 4]
    assert [datetime.fromisoformat(f["ts"]) for f in batch] == [
        START + timedelta(seconds=0.2),
        START + timedelta(seconds=0.3),
    ]
    event = json.loads(tag[3].payload)
    assert event["type"] == "tamper"
    assert datetime.fromisoformat(event["ts"]) == START + timedelta(seconds=0.25)


def test_owntracks_payload(tiny: Scenario) -> None:
    phone = [a for a in build_actions(tiny, start=START) if a.device_id == "t-phone"]
    assert [a.at_s for a in phone] == [0, 15, 30, 45]
    body = json.loads(phone[1].payload)
    assert body["_type"] == "location"
    assert body["tst"] == int((START + timedelta(seconds=0.15)).timestamp())
    assert set(body) == {"_type", "tid", "lat", "lon", "tst", "acc", "batt", "vel"}
    assert geodesic_m(body["lat"], body["lon"], 52.0880, 5.1370) < 300


def test_battery_events_then_power_off_and_silence(make_doc: DocFactory) -> None:
    doc = make_doc(duration_s=3600)
    doc["devices"][0]["behaviour"]["battery"] = {
        "start_pct": 30,
        "drain_pct_per_h": 60,
        "low_pct": 20,
        "critical_pct": 5,
    }
    doc["devices"][0]["behaviour"]["gaps"] = []
    s = Scenario.model_validate(doc)
    tag = [a for a in build_actions(s, start=START) if a.device_id == "t-tag"]
    events = [(a.at_s, json.loads(a.payload)["type"]) for a in tag if a.kind == "event"]
    assert events == [(25, "tamper"), (600, "battery_low"), (1500, "battery_critical"), (1800, "power_off")]
    assert tag[-1].kind == "event" and max(a.at_s for a in tag) == 1800


@pytest.mark.parametrize(("mode", "speed"), [("walk", 1.4), ("cycle", 5.0), ("drive", 13.0)])
def test_track_moves_at_mode_speed_and_pauses(mode: str, speed: float) -> None:
    route = Route.model_validate(
        {
            "mode": mode,
            "start_s": 10,
            "waypoints": [{"lat": 52.0, "lon": 5.0, "pause_s": 5}, {"lat": 52.1, "lon": 5.0}],
        }
    )
    track = Track(route)
    assert track.at(0).speed_mps == 0 and track.at(14).speed_mps == 0  # waiting, then pausing
    p = track.at(115)
    assert geodesic_m(52.0, 5.0, p.lat, p.lon) == pytest.approx(100 * speed, rel=1e-6)
    assert p.heading_deg == pytest.approx(0, abs=0.1)
    end = track.at(track.end_s + 100)
    assert (end.lat, end.lon, end.speed_mps) == (52.1, 5.0, 0.0)


def test_noise_matches_reported_accuracy_and_outlier_rate() -> None:
    route = Route.model_validate({"waypoints": [{"lat": 52.0, "lon": 5.0, "env": "urban"}]})
    pos = Track(route).at(0)
    rng = random.Random(1)
    noise = Noise(urban_acc_m=20, outlier_rate=0.05, outlier_min_m=1000)
    readings = [read(pos, noise, rng) for _ in range(4000)]
    normal = [r for r in readings if not r.outlier]
    inside = sum(geodesic_m(52.0, 5.0, r.lat, r.lon) <= r.acc_m for r in normal) / len(normal)
    assert 0.64 < inside < 0.72
    outliers = [r for r in readings if r.outlier]
    assert 0.04 < len(outliers) / len(readings) < 0.06
    assert all(geodesic_m(52.0, 5.0, r.lat, r.lon) >= 999 for r in outliers)


@pytest.mark.parametrize("name", library())
def test_library_scenario_is_valid_and_plausible(name: str) -> None:
    s = load_scenario(name)
    assert s.name == name
    for d in s.devices:
        track = Track(d.behaviour.route)
        fastest = max(track.at(t).speed_mps for t in range(0, int(s.duration_s), 5))
        # Compression speeds up movement; keep it below 200 km/h so emon's plausibility checks hold.
        assert fastest * s.time_compression <= 55
    actions = build_actions(s, start=START)
    assert actions and all(json.loads(a.payload) for a in actions)


def test_library_has_the_required_scenarios_and_a_short_demo() -> None:
    assert set(library()) >= {
        "approach_victim", "exclusion_breach", "demo", "lawful_near_edge", "lawful_distance",
        "tamper", "panic", "silent_tag", "late_upload", "curfew",
    }  # fmt: skip
    assert load_scenario("demo").wall_duration_s <= 60
    assert sum(a.kind == "batch" for a in build_actions(load_scenario("late_upload"), start=START)) == 1


def test_curfew_window_is_anchored_at_the_run_start() -> None:
    s = load_scenario("curfew")
    case = anchored_case(s, START)  # 21:00:30 UTC = 22:00 Amsterdam (CET), a Monday
    (window,) = case["order"]["inclusion_zones"][0]["schedule"]["windows"]
    assert window == {"days": ["mon"], "start": "22:00", "end": "07:00"}
    assert s.case["order"]["inclusion_zones"][0]["schedule"]["windows"][0]["days"][0] == "mon"  # untouched
    later = anchored_case(s, START + timedelta(hours=3, minutes=7))
    assert later["order"]["inclusion_zones"][0]["schedule"]["windows"][0]["start"] == "01:07"


@pytest.mark.parametrize(
    ("notify", "ack"),
    [
        (b'{"notification_id":"n1","alert_id":"a1","type":"x"}', {"notification_id": "n1", "alert_id": "a1"}),
        (b"not json", None),
        (b'{"alert_id":"a1"}', None),
        (b"[1]", None),
    ],
)
def test_ack_payload(notify: bytes, ack: dict[str, str] | None) -> None:
    out = ack_payload(notify, START)
    if ack is None:
        assert out is None
    else:
        assert out is not None
        assert json.loads(out) == {**ack, "ts": "2026-03-02T21:00:30.000+00:00"}


def test_scenario_rejects_inconsistent_devices(make_doc: DocFactory) -> None:
    doc = make_doc()
    doc["case"]["offender_device"] = "t-other"
    with pytest.raises(ValueError, match="ankle_tag"):
        Scenario.model_validate(doc)


def test_demo_rounds_get_fresh_ids() -> None:
    from simulators.demo import renamed

    s = renamed(load_scenario("demo"), "r2")
    assert s.case_id == "sim-demo-r2"
    assert [d.device_id for d in s.devices] == ["sim-demo-tag-r2", "sim-demo-victim-r2"]
    assert (s.case["offender_device"], s.case["victim_device"]) == ("sim-demo-tag-r2", "sim-demo-victim-r2")
