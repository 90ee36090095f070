"""Per-device credentials: the hash format Mosquitto uses, the file edit, the command."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import pytest

from emon.cli import main
from emon.errors import InvalidInput
from emon.mqtt.passwd import hash_password, new_password, set_credentials, verify_password


def test_hash_matches_pbkdf2_sha512_in_mosquittos_layout() -> None:
    salt = bytes(range(12))
    hashed = hash_password("secret", salt=salt, iterations=101)
    _, seven, iterations, salt_b64, digest_b64 = hashed.split("$")
    assert (seven, iterations, base64.b64decode(salt_b64)) == ("7", "101", salt)
    assert len(base64.b64decode(digest_b64)) == 64
    assert verify_password(hashed, "secret") and not verify_password(hashed, "Secret")
    assert hash_password("secret") != hash_password("secret")  # a fresh salt each time


@pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="needs mosquitto_passwd")
def test_we_read_what_mosquitto_passwd_writes(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    subprocess.run(
        ["mosquitto_passwd", "-c", "-b", str(path), "tag-1", "hunter2"], check=True, capture_output=True
    )
    user, hashed = path.read_text().strip().split(":", 1)
    assert user == "tag-1" and hashed.startswith("$7$")
    assert verify_password(hashed, "hunter2") and not verify_password(hashed, "hunter3")


@pytest.mark.parametrize("bad", ["$6$x$y", "$7$abc$AAAA$AAAA", "$7$101$!!$AAAA", "plain"])
def test_malformed_hashes_never_verify(bad: str) -> None:
    assert not verify_password(bad, "x")


def test_set_credentials_adds_replaces_and_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    assert set_credentials(path, "tag-1", "one") is False
    assert set_credentials(path, "tag-2", "two") is False
    path.chmod(0o600)
    assert set_credentials(path, "tag-1", "uno") is True
    lines = path.read_text().splitlines()
    assert [line.split(":", 1)[0] for line in lines] == ["tag-1", "tag-2"]
    hashes = dict(line.split(":", 1) for line in lines)
    assert verify_password(hashes["tag-1"], "uno") and not verify_password(hashes["tag-1"], "one")
    assert verify_password(hashes["tag-2"], "two")
    assert path.stat().st_mode & 0o777 == 0o600  # the operator's mode survives the rewrite
    assert [p.name for p in tmp_path.iterdir()] == ["passwd"]  # no temporary file left behind


@pytest.mark.parametrize("name", ["", "a:b", "a/b", "a+b", "a#", "-lead", "x" * 65, "spa ce"])
def test_usernames_that_would_break_the_file_or_the_acl_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidInput):
        set_credentials(tmp_path / "passwd", name, new_password())
    assert not (tmp_path / "passwd").exists()


def test_new_passwords_are_long_and_random() -> None:
    passwords = {new_password() for _ in range(100)}
    assert len(passwords) == 100 and all(len(p) == 32 for p in passwords)


def test_the_command_prints_the_password_once_and_stores_only_its_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "passwd"
    assert main(["mqtt-credentials", "victim-7", "--password-file", str(path)]) == 0
    out, err = capsys.readouterr()
    password = out.strip()
    assert len(password) == 32 and "reload" in err and "added" in err
    stored = path.read_text()
    assert password not in stored
    assert verify_password(stored.strip().split(":", 1)[1], password)
    assert main(["mqtt-credentials", "victim-7", "--password-file", str(path)]) == 0
    assert "replaced" in capsys.readouterr().err
    assert main(["mqtt-credentials", "bad:id", "--password-file", str(path)]) == 2
    assert "must match" in capsys.readouterr().err
