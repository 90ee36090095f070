"""The layer contracts of docs/architecture.md (.importlinter) hold, and they would catch a breach."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT), "--no-cache", "--config", str(ROOT / ".importlinter")],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_tree_keeps_every_contract() -> None:
    done = lint(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("geofence/engine.py", "import emon.storage.postgres", "The core imports no adapter"),
        ("privacy.py", "import emon.hub", "The core imports no adapter"),
        ("api/system.py", "import psycopg", "Only emon.storage talks to PostgreSQL"),
        (
            "storage/cases.py",
            "import emon.ingest.pipeline",
            "Storage and the MQTT transport know no other adapter",
        ),
        ("runtime.py", "import emon.api.app", "Entry points > HTTP API > runtime"),
    ],
)
def test_a_breach_is_caught(tmp_path: Path, module: str, line: str, contract: str) -> None:
    shutil.copytree(ROOT / "emon", tmp_path / "emon", ignore=shutil.ignore_patterns("static", "__pycache__"))
    target = tmp_path / "emon" / module
    target.write_text(target.read_text() + f"\n{line}  # noqa\n")
    done = lint(tmp_path)
    text = " ".join(done.stdout.split())  # import-linter wraps long contract names
    assert done.returncode != 0
    assert "1 broken" in text, done.stdout
    assert contract in text.split("Broken contracts")[1], done.stdout
