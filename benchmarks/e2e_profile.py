"""``--profile DIR``: py-spy samples the emon process over the measured window of a run, one file per run.

``py-spy record --nonblocking --format raw`` (collapsed stacks, one line per stack with its sample count;
``--nonblocking`` so that sampling never pauses emon and changes what is measured). Started when the
load starts, stopped with SIGINT when the run's fixes are stored, so py-spy writes its file and exits.
py-spy 0.4.0 works on this machine (0.4.3 does not): ``.venv/bin/pip install py-spy==0.4.0``.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

STOP_WAIT_S = 30.0


def py_spy() -> str:
    """The py-spy executable: the virtualenv's, else one on PATH."""
    local = Path(sys.executable).parent / "py-spy"
    found = str(local) if local.exists() else shutil.which("py-spy")
    if found is None:
        raise RuntimeError("--profile needs py-spy: .venv/bin/pip install py-spy==0.4.0")
    return found


class Profile:
    """One py-spy recording of process ``pid`` into ``path`` (collapsed stacks)."""

    def __init__(self, pid: int, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.proc = subprocess.Popen(
            [py_spy(), "record", "--nonblocking", "--format", "raw", "-p", str(pid), "-o", str(path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def stop(self) -> str:
        """Stop sampling and wait (bounded) for the file; returns a line for the report."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        if not self.path.exists():
            tail = (err or b"").decode(errors="replace").strip().splitlines()[-1:]
            return f"profile: py-spy wrote nothing ({tail[0] if tail else f'exit {self.proc.returncode}'})"
        return f"profile: {self.path} (py-spy raw, collapsed stacks)"
