"""Checking a pack: the signature over the manifest, then every file's SHA-256 (pure, no I/O)."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

from emon import signing
from emon.errors import InvalidInput
from emon.evidence.errors import PackDamaged
from emon.evidence.pack import MANIFEST, PUBLIC_KEY, SIGNATURE


def read_pack(blob: bytes) -> dict[str, bytes]:
    """The members of a pack; :class:`PackDamaged` names a member that cannot be read (CRC, truncation)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(blob))
    except zipfile.BadZipFile as exc:
        raise PackDamaged("(zip)", f"not a readable zip file: {exc}") from exc
    files: dict[str, bytes] = {}
    with archive:
        for info in archive.infolist():
            try:
                files[info.filename] = archive.read(info)
            except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
                raise PackDamaged(info.filename, f"cannot be read: {exc}") from exc
    return files


def verify_pack(blob: bytes, trusted_public_key: bytes | None = None) -> dict[str, bytes]:
    """Verify a pack and return its members.

    Raises :class:`PackDamaged` naming the first file that fails: the signature (``manifest.sig``) does
    not match ``manifest.json`` under the pack's key (or under ``trusted_public_key`` when given: the
    deployment's published key), a listed file is missing or has another SHA-256, or a file is not
    listed.
    """
    files = read_pack(blob)
    for name in (MANIFEST, SIGNATURE, PUBLIC_KEY):
        if name not in files:
            raise PackDamaged(name, "missing")
    try:
        key = signing.public_key_from_pem(files[PUBLIC_KEY])
    except InvalidInput as exc:
        raise PackDamaged(PUBLIC_KEY, str(exc)) from exc
    if trusted_public_key is not None:
        try:
            trusted = signing.public_key_from_pem(trusted_public_key)
        except InvalidInput as exc:
            raise PackDamaged("(trusted key)", str(exc)) from exc
        if signing.key_id(trusted) != signing.key_id(key):
            raise PackDamaged(PUBLIC_KEY, "signed with another key than the trusted one")
        key = trusted
    if not signing.verify_b64(key, files[MANIFEST], files[SIGNATURE].strip()):
        raise PackDamaged(
            SIGNATURE, "the signature does not match manifest.json (manifest or signature changed)"
        )
    try:
        listed: dict[str, str] = json.loads(files[MANIFEST])["files"]
    except (ValueError, KeyError, TypeError) as exc:
        raise PackDamaged(MANIFEST, "not a pack manifest") from exc
    for name, digest in sorted(listed.items()):
        if name not in files:
            raise PackDamaged(name, "listed in the manifest but missing")
        if hashlib.sha256(files[name]).hexdigest() != digest:
            raise PackDamaged(name, "SHA-256 differs from the manifest (the file was changed)")
    for name in sorted(files):
        if name not in listed and name not in (MANIFEST, SIGNATURE):
            raise PackDamaged(name, "not listed in the manifest (added)")
    return files
