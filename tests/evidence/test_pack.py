"""An evidence pack for a real breach: fixes over MQTT to a running emon, the pack through the API and the
``emon`` command; it verifies, fails after one changed byte (naming the file), and replays to the same
decisions through the real engine."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from emon.evidence.errors import PackDamaged
from emon.evidence.pack import zip_bytes
from emon.evidence.replay import replay
from emon.evidence.verify import read_pack, verify_pack
from emon.storage.audit import AuditQuery
from tests.evidence.helpers import (
    OFFENDER,
    VICTIM,
    breach_alert,
    emon_cli,
    setup_case,
    token,
    walk_in,
    write_key,
)
from tests.harness import running_emon

pytestmark = pytest.mark.integration


def flip_byte_in(blob: bytes, member: str, at: int = 10) -> bytes:
    """``blob`` with one byte of ``member``'s stored data changed (the zip itself left as it is)."""
    with zipfile.ZipFile(io.BytesIO(blob)) as z:
        info = z.getinfo(member)
    header = blob[info.header_offset : info.header_offset + 30]
    start = (
        info.header_offset
        + 30
        + int.from_bytes(header[26:28], "little")
        + int.from_bytes(header[28:30], "little")
    )
    out = bytearray(blob)
    out[start + at] ^= 0x01
    return bytes(out)


@pytest.mark.timeout(90)
async def test_a_real_breach_packs_verifies_detects_one_byte_and_replays(tmp_path: Path) -> None:
    key = write_key(tmp_path)
    async with running_emon(signing_key_file=str(key)) as em:
        await setup_case(em)
        await walk_in(em, [2400, 2000, 1600, 1200, 800, 400, 150, 100])
        alert = await breach_alert(em)
        assert alert["order_version"] == 2  # the alert JSON names the order version in force

        probation, police = await token(em, "probation"), await token(em, "police")
        async with em.client(police) as c:
            assert (await c.get(f"/api/v1/alerts/{alert['alert_id']}/evidence")).status_code == 403
        async with em.client(probation) as c:
            r = await c.get(f"/api/v1/alerts/{alert['alert_id']}/evidence")
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/zip"
        pack = r.content

        files = verify_pack(pack)
        for name in (
            "alert.json",
            "alert_history.json",
            "deliveries.json",
            "order_versions.json",
            "start_state.json",
            "settings.json",
            "engine.json",
            "journal.json",
            "fixes.csv",
            "events.json",
            "decisions.json",
            "map.geojson",
            "summary.html",
            "public_key.pem",
            "manifest.json",
            "manifest.sig",
        ):
            assert name in files, name
        # The alert and every decision name the order version in force: version 2, who and why on record.
        assert json.loads(files["alert.json"])["order_version"] == 2
        decisions = json.loads(files["decisions.json"])
        assert {d["order_version"] for d in decisions} == {2}
        assert "proximity_breach" in [d["explanation"]["type"] for d in decisions]
        versions = json.loads(files["order_versions.json"])
        # The window starts at the case's first state (version 1) and holds the change to version 2.
        assert [(v["version"], v["reason"]) for v in versions] == [
            (1, "court order 12/345"),
            (2, "extended by the prosecutor"),
        ]
        # Fixes as stored: exact accuracy (not float32-rounded), device and received time.
        fixes = files["fixes.csv"].decode().splitlines()
        assert fixes[0].startswith("device_id,role,ts,seq,lat,lon,acc_m")
        assert any(line.startswith(f"{OFFENDER},offender,") and ",5.7," in line for line in fixes[1:])
        assert any(line.startswith(f"{VICTIM},victim,") and ",12.3," in line for line in fixes[1:])
        summary = files["summary.html"].decode()
        assert "Bewijspakket" in summary and "Evidence pack" in summary
        geo = json.loads(files["map.geojson"])
        assert {f["properties"]["kind"] for f in geo["features"]} >= {"exclusion", "track", "fix"}
        manifest = json.loads(files["manifest.json"])
        assert any("at packing: replay reached the same" in n for n in manifest["notes"]), manifest["notes"]

        # The journal names each batch by its range of receiving times; the pack resolves it into fixes.
        journal = json.loads(files["journal.json"])
        batches = [step for step in journal if step["kind"] == "batch"]
        assert batches and all("stored_through" in step["detail"] and step["fixes"] for step in batches)
        # Replay through the real engine reaches the same decisions.
        result = replay(files)
        assert result.same and len(result.recorded) == len(decisions) >= 3

        # The command line: verify 0, one byte changed in fixes.csv → non-zero naming fixes.csv.
        good = tmp_path / "pack.zip"
        good.write_bytes(pack)
        ok = emon_cli(em.settings, "evidence", "verify", str(good))
        assert ok.returncode == 0, ok.stdout + ok.stderr
        bad = tmp_path / "bad.zip"
        bad.write_bytes(flip_byte_in(pack, "fixes.csv", at=200))
        broken = emon_cli(em.settings, "evidence", "verify", str(bad))
        assert broken.returncode == 1 and "fixes.csv" in broken.stdout, broken.stdout + broken.stderr
        replayed = emon_cli(em.settings, "replay", str(good))
        assert replayed.returncode == 0 and "same" in replayed.stdout, replayed.stdout + replayed.stderr

        # `emon evidence ALERT_ID -o` writes a pack from the database that verifies too.
        out = tmp_path / "cli.zip"
        made = emon_cli(em.settings, "evidence", alert["alert_id"], "-o", str(out), key=key)
        assert made.returncode == 0, made.stderr
        assert verify_pack(out.read_bytes())
        # Both downloads are in the audit log: through the API by the probation user, and from the host.
        packs = await em.runtime.audit.query(AuditQuery(action="evidence.pack", outcome="allowed"))
        assert [(r.role, r.case_id, r.alert_id) for r in packs] == [
            ("probation", "case-e", alert["alert_id"]),
            ("admin", "case-e", alert["alert_id"]),
        ]
        assert packs[1].user_name.startswith("cli:")


def test_a_rewritten_zip_with_a_changed_file_names_that_file(tmp_path: Path) -> None:
    """Re-zipped with a valid CRC, the change still shows: the manifest's SHA-256 names the file."""
    from datetime import UTC, datetime

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from emon import signing
    from emon.evidence.pack import MANIFEST, PUBLIC_KEY, SIGNATURE, dumps

    key = Ed25519PrivateKey.generate()
    files = {"decisions.json": dumps([{"a": 1}]), PUBLIC_KEY: signing.public_pem(key.public_key()).encode()}
    import hashlib

    manifest = dumps({"files": {n: hashlib.sha256(b).hexdigest() for n, b in files.items()}})
    now = datetime(2026, 12, 1, tzinfo=UTC)
    pack = zip_bytes({**files, MANIFEST: manifest, SIGNATURE: signing.sign_b64(key, manifest)}, now)
    assert set(verify_pack(pack)) == {"decisions.json", PUBLIC_KEY, MANIFEST, SIGNATURE}
    members = read_pack(pack)
    members["decisions.json"] = dumps([{"a": 2}])
    with pytest.raises(PackDamaged) as err:
        verify_pack(zip_bytes(members, now))
    assert err.value.file == "decisions.json"
    members = read_pack(pack)
    members[MANIFEST] = members[MANIFEST].replace(b"{", b"{ ", 1)
    with pytest.raises(PackDamaged) as err:
        verify_pack(zip_bytes(members, now))
    assert err.value.file == SIGNATURE
    other = Ed25519PrivateKey.generate()
    with pytest.raises(PackDamaged) as err:
        verify_pack(pack, trusted_public_key=signing.public_pem(other.public_key()).encode())
    assert err.value.file == PUBLIC_KEY


def resign(pack: bytes, key_file: Path, change: dict[str, bytes]) -> bytes:
    """``pack`` with files replaced by ``change`` and a new manifest signed with the deployment's key
    (what an insider with the key could do): it verifies, so only the replay can tell."""
    import hashlib
    from datetime import UTC, datetime

    from emon import signing
    from emon.evidence.pack import MANIFEST, SIGNATURE, dumps

    members = {**read_pack(pack), **change}
    manifest = json.loads(members[MANIFEST])
    manifest["files"] = {
        n: hashlib.sha256(b).hexdigest() for n, b in members.items() if n not in (MANIFEST, SIGNATURE)
    }
    body = dumps(manifest)
    members[MANIFEST], members[SIGNATURE] = body, signing.sign_b64(signing.load_private_key(key_file), body)
    return zip_bytes(members, datetime.now(UTC))


@pytest.mark.timeout(90)
async def test_a_pack_starting_mid_stream_replays_and_a_forged_fix_shows_in_the_replay(
    tmp_path: Path,
) -> None:
    """The starting state is a snapshot taken while the offender was already being tracked (not the
    case's creation); the victim's earlier position is in that state but not in the pack's fixes. A fix
    moved away from the victim (re-signed) makes the replay fail and say which decision differs."""
    import asyncio
    from datetime import UTC, datetime, timedelta

    from emon.geo import destination
    from tests.evidence.helpers import VICTIM_AT
    from tests.harness import eventually, publish

    key = write_key(tmp_path)
    async with running_emon(signing_key_file=str(key), evidence_snapshot_s=0.01, evidence_before_s=0) as em:
        await setup_case(em)

        async def fix(device: str, ts: datetime, distance_m: float, acc: float, seq: int) -> None:
            lat, lon = destination(*VICTIM_AT, 0, distance_m)
            body = {"ts": ts.isoformat(), "lat": lat, "lon": lon, "acc": acc, "seq": seq}
            await publish(em.topic(f"emon/v1/fix/{device}"), json.dumps(body))

        r1 = datetime.now(UTC)
        await fix(VICTIM, r1 - timedelta(seconds=20), 0, 12.3, 0)
        for i, d in enumerate([900, 700, 500]):
            await fix(OFFENDER, r1 - timedelta(seconds=15 - 5 * i), d, 5.7, i)

        async def pre_alerted() -> bool:
            async with em.client() as c:
                decided = (await c.get("/api/v1/cases/case-e/evaluations")).json()
            return "proximity_pre_alert" in [d["type"] for d in decided]

        await eventually(pre_alerted)  # phase 1 evaluated (the machine may be slow)
        # An order change now (version 3) snapshots the state: the pack will start from it.
        from tests.evidence.helpers import case_doc

        async with em.client() as c:
            r = await c.put(
                "/api/v1/cases/case-e", json=case_doc("case-e", 300), params={"reason": "address corrected"}
            )
            assert r.status_code == 200
        # Phase 2, after the snapshot: the offender drives up at 15 m/s, the tag reporting every 2 s (pursuit
        # mode after the pre-alert's locate request). A breach needs two fixes inside the ban with a fresh
        # victim fix (docs/safety.md); 30 m between them makes their errors independent. Fixes 0.25 s apart
        # (the old input) imply > 70 m/s: implausible jumps that cannot count.
        await asyncio.sleep(9.0)
        r2 = datetime.now(UTC)
        await fix(VICTIM, r2 - timedelta(seconds=8.2), 0, 12.3, 1)
        for i, d in enumerate([250, 220, 190, 160]):
            await fix(OFFENDER, r2 - timedelta(seconds=8 - 2 * i), d, 5.7, 10 + i)
        alert = await breach_alert(em)
        async with em.client() as c:
            r = await c.get(f"/api/v1/alerts/{alert['alert_id']}/evidence")
        assert r.status_code == 200, r.text
        files = verify_pack(r.content)
        start = json.loads(files["start_state.json"])
        assert datetime.fromisoformat(start["at"]) > r1 and start["order_version"] == 3
        assert VICTIM in start["state"]["devices"] and OFFENDER in start["state"]["devices"]
        rows = files["fixes.csv"].decode().splitlines()[1:]
        victim_rows = [row for row in rows if row.startswith(f"{VICTIM},")]
        assert len(victim_rows) == 1 and ",1," in victim_rows[0], (
            start["at"],
            r1,
            r2,
            rows,
        )  # the window's only
        result = replay(files)
        assert result.same and "proximity_breach" in [e["type"] for e in result.recorded]

        # Days later, compaction keeps only what this alert's pack needs: the pack is the same and replays.
        from emon.storage.compaction import compact

        s = em.settings
        removed = await compact(
            em.runtime.db,
            datetime.now(UTC) + timedelta(days=3),
            dense_days=2,
            before_s=s.evidence_before_s,
            after_s=s.evidence_after_s,
        )
        assert removed[0] > 0 and removed[1] > 0, removed
        async with em.client() as c:
            again = verify_pack((await c.get(f"/api/v1/alerts/{alert['alert_id']}/evidence")).content)
        assert json.loads(again["start_state.json"])["n"] == start["n"]
        earlier = json.loads(files["decisions.json"])  # the alert is still open: later decisions may follow
        assert json.loads(again["decisions.json"])[: len(earlier)] == earlier
        assert replay(again).same

        # Forge: the first breach fix 2 km away instead of 250 m, re-signed with the key.
        lat, lon = destination(*VICTIM_AT, 0, 2000)
        forged_rows = []
        for row in files["fixes.csv"].decode().splitlines():
            cells = row.split(",")
            if cells[0] == OFFENDER and cells[3] == "10":
                cells[4], cells[5] = repr(lat), repr(lon)
            forged_rows.append(",".join(cells))
        forged = tmp_path / "forged.zip"
        forged.write_bytes(resign(r.content, key, {"fixes.csv": ("\n".join(forged_rows) + "\n").encode()}))
        assert verify_pack(forged.read_bytes())
        out = emon_cli(em.settings, "replay", str(forged))
        assert out.returncode == 1, out.stdout + out.stderr
        assert "replay differs from the record" in out.stdout and "proximity_breach" in out.stdout, out.stdout


@pytest.mark.timeout(60)
async def test_unknown_alerts_are_404_and_no_key_is_a_clear_503(tmp_path: Path) -> None:
    key = write_key(tmp_path)
    async with running_emon(signing_key_file=str(key)) as em, em.client() as c:
        assert (
            await c.get("/api/v1/alerts/0b6f2f0e-7a4b-4b8e-9a53-111111111111/evidence")
        ).status_code == 404
        assert (await c.get("/api/v1/alerts/not-a-uuid/evidence")).status_code == 404
    async with running_emon() as em, em.client() as c:
        r = await c.get("/api/v1/alerts/0b6f2f0e-7a4b-4b8e-9a53-111111111111/evidence")
        assert r.status_code == 503 and "EMON_SIGNING_KEY_FILE" in r.text
