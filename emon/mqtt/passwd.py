"""Per-device MQTT credentials as Mosquitto password-file lines (the ``mosquitto_passwd`` format).

A line is ``username:$7$iterations$salt$hash``: PBKDF2-HMAC-SHA512 over the password with a random
12-byte salt, salt and 64-byte hash in standard base64 — what Mosquitto ≥ 2.0 writes and reads.
101 iterations is what ``mosquitto_passwd`` 2.0 uses; it is enough because the passwords are random
(192 bits from :mod:`secrets`), not chosen by people, and Mosquitto pays the iterations on every
CONNECT — 10,000 devices reconnecting after an outage must not stall the broker.

The username is the device id (tags and victim devices) or the OwnTracks user; the ACL in
``deploy/mosquitto/acl`` lets that name publish and read only its own topics.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import re
import secrets
import tempfile
from pathlib import Path

from emon.errors import InvalidInput

ITERATIONS = 101
SALT_BYTES = 12
# Device ids and OwnTracks user names; no ':' (the file's separator), no '+', '#' or '/' (Mosquitto
# refuses such names in %u patterns, and they would be topic levels of their own).
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def new_password() -> str:
    """A random password: 32 URL-safe characters (192 bits)."""
    return secrets.token_urlsafe(24)


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """``$7$iterations$salt$hash`` for ``password`` (a fresh random salt unless one is given)."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(hashed: str, password: str) -> bool:
    """Does ``password`` match a ``$7$`` hash (as Mosquitto would decide)?"""
    parts = hashed.split("$")
    if len(parts) != 5 or parts[1] != "7" or not parts[2].isdigit():
        return False
    try:
        salt, digest = base64.b64decode(parts[3], validate=True), base64.b64decode(parts[4], validate=True)
    except ValueError:
        return False
    candidate = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, int(parts[2]))
    return hmac.compare_digest(candidate, digest)


def check_username(username: str) -> str:
    if not USERNAME_RE.match(username):
        raise InvalidInput(
            f"MQTT username {username[:80]!r} must match {USERNAME_RE.pattern} (a device id without ':')"
        )
    return username


def set_credentials(path: Path, username: str, password: str) -> bool:
    """Write ``username``'s line into the password file at ``path``, replacing an earlier one.

    Other lines are kept as they are. The file is replaced atomically (a broker reloading it never
    reads half a file) and keeps its mode; a new file gets 0640 (readable by the broker's group).
    Returns True when an earlier line for ``username`` was replaced.
    """
    check_username(username)
    line = f"{username}:{hash_password(password)}"
    lines: list[str] = []
    replaced = False
    mode, gid = 0o640, -1
    if path.exists():
        st = path.stat()
        mode, gid = st.st_mode & 0o777, st.st_gid
        for existing in path.read_text().splitlines():
            if existing.split(":", 1)[0] == username:
                if not replaced:
                    lines.append(line)
                replaced = True
            else:
                lines.append(existing)
    if not replaced:
        lines.append(line)
    fd, tmp = tempfile.mkstemp(prefix=".passwd-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(lines) + "\n")
        if gid != -1:
            with contextlib.suppress(OSError):  # keep the broker's group if we may
                os.chown(tmp, -1, gid)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return replaced
