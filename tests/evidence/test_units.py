"""The pure parts of evidence: the key loader, the replay comparison, the summary and map, settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key

from emon import signing
from emon.errors import ConfigError
from emon.evidence.errors import PackDamaged
from emon.evidence.pack import PackData, StoredFix, pack_files
from emon.evidence.replay import compare, describe
from emon.evidence.verify import verify_pack
from emon.fix import Fix
from emon.settings import Settings
from emon.storage.cases import EvaluationWrite

T = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def test_one_key_file_signs_audit_checkpoints_and_packs_and_bad_keys_are_named(tmp_path: Path) -> None:
    """One loader, one format: the key ``emon keygen`` writes signs both, under the same key id."""
    from emon.audit import sign_checkpoint

    pem = tmp_path / "k.pem"
    public = signing.generate_key_file(pem)
    key = signing.load_private_key(pem)
    assert signing.verify_b64(public, b"x", signing.sign_b64(key, b"x"))
    assert not signing.verify_b64(public, b"y", signing.sign_b64(key, b"x"))
    checkpoint = sign_checkpoint(key, 1, "00" * 32, T)
    pack_key = signing.public_key_from_pem(signing.public_pem(public).encode())
    assert checkpoint.key_id == signing.key_id(pack_key) == signing.key_id(public)
    raw = tmp_path / "k.raw"
    raw.write_bytes(key.private_bytes_raw())
    ec = tmp_path / "ec.pem"
    ec.write_bytes(
        generate_private_key(SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key")
    for path, problem in (
        (ec, "not an Ed25519"),
        (garbage, "cannot read"),
        (raw, "cannot read"),
        (tmp_path / "no", "cannot read"),
    ):
        with pytest.raises(ConfigError, match=problem) as err:
            signing.load_private_key(path)
        assert err.value.variable == "EMON_SIGNING_KEY_FILE"


def decision(type_: str, at: str, distance: float) -> dict[str, object]:
    return {"type": type_, "rule": "proximity", "at": at, "episode": "e", "distance_m": distance}


@pytest.mark.parametrize(
    ("recorded", "replayed", "same", "shown"),
    [
        (
            [decision("proximity_breach", "t1", 50.0)],
            [decision("proximity_breach", "t1", 50.0)],
            True,
            "same 1",
        ),
        ([decision("proximity_breach", "t1", 50.0)], [], False, "missing  proximity_breach"),
        ([], [decision("proximity_breach", "t1", 50.0)], False, "extra    proximity_breach"),
        (
            [decision("proximity_breach", "t1", 50.0)],
            [decision("proximity_breach", "t1", 60.0)],
            False,
            "distance_m: recorded 50.0, replayed 60.0",
        ),
        # The record keeps the first of two equal keys (ON CONFLICT DO NOTHING); so does the comparison.
        (
            [decision("breach_update", "t2", 40.0)],
            [decision("breach_update", "t2", 40.0), decision("breach_update", "t2", 30.0)],
            True,
            "same 1",
        ),
    ],
)
def test_replay_comparison(
    recorded: list[dict[str, object]], replayed: list[dict[str, object]], same: bool, shown: str
) -> None:
    result = compare(recorded, replayed)  # type: ignore[arg-type]
    assert result.same is same
    assert shown in describe(result)


def test_the_summary_is_in_dutch_and_english_and_the_map_has_zones_and_tracks() -> None:
    fixes = [StoredFix(Fix("tag", T, 52.0 + i / 1000, 5.0, 7.5, seq=i), T, "offender") for i in range(3)]
    doc = {
        "order": {
            "exclusion_zones": [{"name": "<school>", "circle": {"lat": 52.0, "lon": 5.0, "radius_m": 100}}]
        }
    }
    data = PackData(
        alert={"alert_id": "a-1", "type": "exclusion_breach"},
        alert_history=[
            {"at": T.isoformat(), "actor": "officer <b>", "action": "acknowledge", "state": "acknowledged"}
        ],
        deliveries=[],
        case_id="c-1",
        window_start=T,
        window_end=T,
        start={"order_version": 1, "config": {}},
        order_versions=[{"version": 1, "document": doc}],
        journal=[],
        fixes=fixes,
        events=[],
        decisions=[],
        engine={},
        notes=[],
    )
    files = pack_files(data, T)
    html = files["summary.html"].decode()
    assert "Bewijspakket" in html and "Evidence pack" in html and "officer &lt;b&gt;" in html
    import json

    features = json.loads(files["map.geojson"])["features"]
    kinds = [f["properties"]["kind"] for f in features]
    assert kinds == ["exclusion", "track", "fix", "fix", "fix"]
    assert features[0]["geometry"]["type"] == "Polygon" and features[0]["properties"]["radius_m"] == 100
    assert "5.0,7.5," in files["fixes.csv"].decode()


def test_a_file_that_is_not_a_pack_is_damaged_not_a_crash() -> None:
    with pytest.raises(PackDamaged) as err:
        verify_pack(b"PK\x03\x04 not really")
    assert err.value.file == "(zip)"


def test_evidence_settings_fail_naming_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="EMON_RETENTION_DAYS"):
        Settings.from_env({"EMON_RETENTION_DAYS": "-1"})
    with pytest.raises(ConfigError, match="EMON_EVIDENCE_SNAPSHOT_S"):
        Settings.from_env({"EMON_EVIDENCE_SNAPSHOT_S": "0"})
    with pytest.raises(ConfigError, match="EMON_SIGNING_KEY_FILE"):
        Settings.from_env({"EMON_SIGNING_KEY_FILE": str(tmp_path / "missing.pem")})
    key = tmp_path / "signing.pem"
    signing.generate_key_file(key)
    s = Settings.from_env({"EMON_SIGNING_KEY_FILE": str(key), "EMON_RETENTION_DAYS": "90"})
    assert s.signing_key_file == str(key) and s.retention_days == 90.0


def test_the_starting_state_keeps_the_victims_fixes_only_from_stale_s_before_the_window() -> None:
    from emon.storage.evidence import _without_old_victim_positions

    def rec(minutes_before: float) -> list[object]:
        return [(T - timedelta(minutes=minutes_before)).isoformat(), 52.0, 5.0, 10.0]

    start = {
        "config": {"stale_s": 600.0},
        "state": {
            "devices": {
                "vic": {"last": rec(2), "ref": rec(12), "history": [rec(30), rec(12), rec(9), rec(2)]},
                "tag": {"last": rec(30), "ref": rec(30), "history": [rec(30)]},
            }
        },
    }
    pruned = _without_old_victim_positions(start, "vic", T)
    assert pruned["state"]["devices"]["vic"] == {"last": rec(2), "ref": None, "history": [rec(9), rec(2)]}
    assert (
        pruned["state"]["devices"]["tag"] == start["state"]["devices"]["tag"]
    )  # the offender's memory stays
    assert start["state"]["devices"]["vic"]["ref"] == rec(12)  # the input is not changed


class JournalRecords:
    """CaseRecords' save_evaluation that fails when told to and keeps the journal steps it stored."""

    def __init__(self) -> None:
        self.fail = False
        self.steps: list[object] = []

    async def save_evaluation(self, states: object, events: object, **kw: object) -> None:
        if self.fail:
            import psycopg

            raise psycopg.OperationalError("connection lost")
        self.steps.append(kw["step"])

    async def save_evaluations(self, writes: list[EvaluationWrite]) -> None:
        for w in writes:
            await self.save_evaluation(w.states, w.events, step=w.step)


async def test_a_failed_journal_write_leaves_its_fixes_in_the_next_batchs_range() -> None:
    from emon.case import Case
    from emon.casebook import CaseBook
    from emon.evaluation import Evaluation
    from emon.geofence import Engine
    from emon.hub import Hub
    from emon.storage.cases import JournalStep

    case = Case.model_validate(
        {
            "case_id": "c",
            "risk": "high",
            "offender_device": "tag",
            "residence": {"lat": 52.1, "lon": 5.1},
            "order": {"contact_ban_m": 500},
        }
    )
    records = JournalRecords()
    evaluation = Evaluation(Engine(), records, CaseBook([case]), Hub())  # type: ignore[arg-type]
    evaluation.engine.add_case(case)
    evaluation._stored_after = T  # as recovery sets it from the watermark
    t1, t2 = T + timedelta(seconds=1), T + timedelta(seconds=2)
    records.fail = True
    with pytest.raises(Exception, match="connection lost"):
        await evaluation.consume([Fix("tag", T, 52.0, 5.0, 8.0)], [], t1, 0.0, stored_at=t1)
    records.fail = False
    await evaluation.consume([Fix("tag", t1, 52.0, 5.0, 8.0)], [], t2, 0.0, stored_at=t2)
    [step] = records.steps
    assert isinstance(step, JournalStep) and step.kind == "batch" and step.case_ids == ()
    assert (step.detail["stored_after"], step.detail["stored_through"]) == (T.isoformat(), t2.isoformat())
