"""The command line: keygen, user and token administration, audit verify — on the real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import stat
import uuid
from pathlib import Path

import pytest

from emon.cli import main
from emon.signing import load_private_key
from emon.storage.postgres import drop_schema
from tests.harness import PG_URL

pytestmark = pytest.mark.integration


def test_keygen_writes_a_private_key_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "k.pem"
    assert main(["keygen", "-o", str(path)]) == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "BEGIN PUBLIC KEY" in capsys.readouterr().out
    load_private_key(path)
    assert main(["keygen", "-o", str(path)]) == 2  # never overwritten


def test_users_and_tokens_from_the_command_line_are_audited_and_verified(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    schema = f"t_cli_{uuid.uuid4().hex[:8]}"
    key = tmp_path / "k.pem"
    assert main(["keygen", "-o", str(key)]) == 0
    monkeypatch.setenv("EMON_DB_SCHEMA", schema)
    monkeypatch.setenv("EMON_SIGNING_KEY_FILE", str(key))
    monkeypatch.setenv("EMON_AUDIT_CHECKPOINT_EVERY", "1")
    try:
        capsys.readouterr()
        assert main(["user", "add", "ann", "--name", "Ann", "--role", "police", "--unit", "police:ams"]) == 0
        assert json.loads(capsys.readouterr().out)["units"] == ["police:ams"]
        assert main(["user", "add", "ann", "--name", "Ann", "--role", "police"]) == 1  # exists
        assert main(["user", "add", "bob", "--name", "Bob", "--role", "police", "--unit", "Not A Unit"]) == 2
        assert main(["token", "issue", "ann", "--ttl-days", "1"]) == 0
        issued = json.loads(capsys.readouterr().out)
        assert issued["token"].startswith("emon_") and issued["user_id"] == "ann"
        assert main(["token", "revoke", issued["token_id"]]) == 0
        assert json.loads(capsys.readouterr().out)["revoked_by"].startswith("cli:")
        assert main(["token", "revoke", "tok_nope"]) == 1
        assert main(["audit", "verify"]) == 0
        out = capsys.readouterr().out
        assert "ok: 3 records, 3 signed checkpoints verified" in out
    finally:
        asyncio.run(drop_schema(PG_URL, schema))
