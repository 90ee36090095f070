"""The deployment's Ed25519 signing key: generate, load, identify, sign and verify.

One key per deployment, one format: ``EMON_SIGNING_KEY_FILE`` names an unencrypted PKCS#8 PEM private
key (what ``emon keygen`` writes, mode 0600). It signs the audit log's checkpoints and evidence-pack
manifests; both name it by the same :func:`key_id`. Verifying needs only the public key: ``emon keygen``
prints it, and :func:`load_public_key` accepts either the private or the public PEM. Key handling is
described in docs/access.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from emon.errors import ConfigError, InvalidInput


def generate_key_file(path: Path) -> Ed25519PublicKey:
    """Write a new private key to ``path`` (mode 0600; refuses to overwrite); return its public key."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return key.public_key()


def new_private_key_pem() -> bytes:
    """A fresh private key in the one format emon reads (PKCS#8 PEM, unencrypted)."""
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def public_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def load_private_key(path: str | Path, variable: str = "EMON_SIGNING_KEY_FILE") -> Ed25519PrivateKey:
    """The private key in ``path``; :class:`ConfigError` naming ``variable`` if it cannot be used."""
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(variable, f"cannot read an Ed25519 private key from {path}: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(variable, f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """The public key in ``path``, which may hold the public PEM or the private one."""
    data = Path(path).read_bytes()
    if b"PRIVATE KEY" in data:
        return load_private_key(path, "--public-key").public_key()
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise ConfigError("--public-key", f"cannot read a public key from {path}: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError("--public-key", f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def key_id(key: Ed25519PublicKey) -> str:
    """A short, stable name of a public key: the first 16 hex digits of the SHA-256 of its raw bytes."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def verify(key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


def public_key_from_pem(pem: bytes) -> Ed25519PublicKey:
    """The Ed25519 public key in ``pem`` (e.g. carried inside an evidence pack); :class:`InvalidInput` if not."""
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise InvalidInput("the public key is not PEM") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidInput("the public key is not an Ed25519 key")
    return key


def sign_b64(key: Ed25519PrivateKey, data: bytes) -> bytes:
    """The Ed25519 signature of ``data``, base64 (ASCII bytes): how evidence packs carry it."""
    return base64.b64encode(key.sign(data))


def verify_b64(key: Ed25519PublicKey, data: bytes, signature_b64: bytes) -> bool:
    """True if ``signature_b64`` (base64) is a valid signature of ``data`` by ``key``."""
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        return False
    return verify(key, signature, data)
