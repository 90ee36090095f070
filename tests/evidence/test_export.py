"""Export → import into another emon (another schema) → export gives the same documents."""

from __future__ import annotations

import filecmp
import json
from pathlib import Path

import pytest

from emon.storage.audit import AuditLog, AuditQuery
from emon.storage.postgres import Database, drop_schema
from tests.evidence.helpers import OFFENDER, VICTIM, breach_alert, emon_cli, setup_case, walk_in
from tests.harness import running_emon

pytestmark = pytest.mark.integration


@pytest.mark.timeout(90)
async def test_export_import_export_gives_the_same_documents(tmp_path: Path) -> None:
    async with running_emon() as em:
        await setup_case(em)
        walk = [2400, 1600, 800, 400, 150, 100]
        await walk_in(em, walk)
        alert = await breach_alert(em)
        async with em.client() as c:
            r = await c.post(f"/api/v1/alerts/{alert['alert_id']}/ack", json={"note": "called the victim"})
            assert r.status_code == 200, r.text
            assert (
                await c.put("/api/v1/cases/case-e/legal-hold", json={"hold": True, "reason": "OM 2026/77"})
            ).status_code == 200
        first, second = tmp_path / "first", tmp_path / "second"
        out = emon_cli(em.settings, "export", "case-e", "-o", str(first))
        assert out.returncode == 0, out.stderr
        exported = await em.runtime.audit.query(AuditQuery(action="case.export"))
        assert [(r.case_id, r.user_name.startswith("cli:")) for r in exported] == [("case-e", True)]
        other = em.settings.model_copy(update={"db_schema": em.settings.db_schema + "_import"})
        try:
            out = emon_cli(other, "import", str(first))
            assert out.returncode == 0 and "imported case case-e" in out.stdout, out.stdout + out.stderr
            again = emon_cli(other, "import", str(first))
            assert again.returncode == 2 and "already exists" in again.stderr
            # What enters a database is accounted for as what leaves it: the import and the refusal.
            there = Database(other.database_url, other.db_schema)
            await there.open()
            try:
                imported = await AuditLog(there).query(AuditQuery(action="case.import"))
            finally:
                await there.close()
            assert sorted((r.outcome, r.case_id, r.user_name.startswith("cli:")) for r in imported) == [
                ("allowed", "case-e", True),
                ("refused", None, True),
            ]
            out = emon_cli(other, "export", "case-e", "-o", str(second))
            assert out.returncode == 0, out.stderr
        finally:
            await drop_schema(other.database_url, other.db_schema)

    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    match, mismatch, errors = filecmp.cmpfiles(first, second, names, shallow=False)
    assert not mismatch and not errors and len(match) == 9
    # Nothing lost on the way: every kind of record is in the export.
    case = json.loads((first / "case.json").read_text())
    assert case["version"] == 2 and case["legal_hold"] is True
    versions = json.loads((first / "order_versions.json").read_text())
    assert [(v["version"], v["reason"]) for v in versions] == [
        (1, "court order 12/345"),
        (2, "extended by the prosecutor"),
    ]
    alerts = json.loads((first / "alerts.json").read_text())
    breach = next(a for a in alerts if a["alert_id"] == alert["alert_id"])
    assert breach["order_version"] == 2 and any(
        h["action"] == "acknowledge" or "ack" in h["action"] for h in breach["history"]
    )
    assert breach["deliveries"], "the victim notification and the police message are exported"
    fixes = (first / "fixes.csv").read_text().splitlines()
    assert len(fixes) == 1 + 2 * len(walk) and {line.split(",")[0] for line in fixes[1:]} == {
        OFFENDER,
        VICTIM,
    }
    decisions = json.loads((first / "decisions.json").read_text())
    assert "proximity_breach" in [d["type"] for d in decisions]
    assert json.loads((first / "track.geojson").read_text())["features"]


def test_an_export_with_a_changed_file_is_refused(tmp_path: Path) -> None:
    from emon.errors import InvalidInput
    from emon.storage.case_export import FORMAT, read_export

    (tmp_path / "case.json").write_text('{"case_id": "x"}\n')
    import hashlib

    digest = hashlib.sha256(b'{"case_id": "x"}\n').hexdigest()
    (tmp_path / "manifest.json").write_text(json.dumps({"format": FORMAT, "files": {"case.json": digest}}))
    assert read_export(tmp_path)["case.json"] == b'{"case_id": "x"}\n'
    (tmp_path / "case.json").write_text('{"case_id": "y"}\n')
    with pytest.raises(InvalidInput, match=r"case\.json"):
        read_export(tmp_path)
