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
from tests.evidence.helpers import OFFENDER, VICTIM, breach_alert, emon_cli, setup_case, token, walk_in, write_key
from tests.harness import running_emon

pytestmark = pytest.mark.integration


def flip_byte_in(blob: bytes, member: str, at: int = 10) -> bytes:
    """``blob`` with one byte of ``member``'s stored data changed (the zip itself left as it is)."""
    with zipfile.ZipFile(io.BytesIO(blob)) as z:
        info = z.getinfo(member)
    header = blob[info.header_offset : info.header_offset + 30]
    start = info.header_offset + 30 + int.from_bytes(header[26:28], "little") + int.from_bytes(header[28:30], "little")
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

        probation, police = await token(em, "probation"), await token(em, "police")
        async with em.client(police) as c:
            assert (await c.get(f"/api/v1/alerts/{alert['alert_id']}/evidence")).status_code == 403
        async with em.client(probation) as c:
            r = await c.get(f"/api/v1/alerts/{alert['alert_id']}/evidence")
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/zip"
        pack = r.content

        files = verify_pack(pack)
        for name in ("alert.json", "alert_history.json", "deliveries.json", "order_versions.json", "start_state.json",
                     "settings.json", "engine.json", "journal.json", "fixes.csv", "events.json", "decisions.json",
                     "map.geojson", "summary.html", "public_key.pem", "manifest.json", "manifest.sig"):
            assert name in files, name
        # The alert and every decision name the order version in force: version 2, who and why on record.
        assert json.loads(files["alert.json"])["order_version"] == 2
        decisions = json.loads(files["decisions.json"])
        assert {d["order_version"] for d in decisions} == {2}
        assert "proximity_breach" in [d["explanation"]["type"] for d in decisions]
        versions = json.loads(files["order_versions.json"])
        # The window starts at the case's first state (version 1) and holds the change to version 2.
        assert [(v["version"], v["reason"]) for v in versions] == [
            (1, "court order 12/345"), (2, "extended by the prosecutor")]
        # Fixes as stored: exact accuracy (not float32-rounded), device and received time.
        fixes = files["fixes.csv"].decode().splitlines()
        assert fixes[0].startswith("device_id,role,ts,seq,lat,lon,acc_m")
        assert any(f",{OFFENDER}," in f"," + line and ",5.7," in line for line in fixes[1:])
        assert any(line.startswith(f"{VICTIM},victim,") and ",12.3," in line for line in fixes[1:])
        summary = files["summary.html"].decode()
        assert "Bewijspakket" in summary and "Evidence pack" in summary
        geo = json.loads(files["map.geojson"])
        assert {f["properties"]["kind"] for f in geo["features"]} >= {"exclusion", "track", "fix"}
        manifest = json.loads(files["manifest.json"])
        assert any("at packing: replay reached the same" in n for n in manifest["notes"]), manifest["notes"]

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


def test_a_rewritten_zip_with_a_changed_file_names_that_file(tmp_path: Path) -> None:
    """Re-zipped with a valid CRC, the change still shows: the manifest's SHA-256 names the file."""
    from datetime import UTC, datetime

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from emon.evidence import signing
    from emon.evidence.pack import MANIFEST, PUBLIC_KEY, SIGNATURE, dumps

    key = Ed25519PrivateKey.generate()
    files = {"decisions.json": dumps([{"a": 1}]), PUBLIC_KEY: signing.public_pem(key)}
    import hashlib

    manifest = dumps({"files": {n: hashlib.sha256(b).hexdigest() for n, b in files.items()}})
    now = datetime(2026, 12, 1, tzinfo=UTC)
    pack = zip_bytes({**files, MANIFEST: manifest, SIGNATURE: signing.sign(key, manifest)}, now)
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
        verify_pack(pack, trusted_public_key=signing.public_pem(other))
    assert err.value.file == PUBLIC_KEY
