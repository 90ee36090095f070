"""The deployment's Ed25519 signing key: a tiny loader and sign/verify over bytes.

The key is a PEM PKCS#8 Ed25519 private key (``openssl genpkey -algorithm ed25519``, or emon's own
``keygen``) in the file named by ``EMON_SIGNING_KEY_FILE``, readable only by the emon user. A raw
32-byte private key file is accepted too. Packs carry the public key; a verifier should compare it with
the deployment's published public key (``emon evidence verify --public-key``).
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from emon.evidence.errors import EvidenceError


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    """Read an Ed25519 private key (PEM PKCS#8, or 32 raw bytes); :class:`EvidenceError` says why not."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise EvidenceError(f"cannot read signing key {path}: {exc.strerror}") from exc
    if len(data) == 32:
        return Ed25519PrivateKey.from_private_bytes(data)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise EvidenceError(f"signing key {path} is not an unencrypted PEM PKCS#8 private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise EvidenceError(f"signing key {path} is not an Ed25519 key")
    return key


def new_private_key_pem() -> bytes:
    """A fresh Ed25519 private key as PEM PKCS#8 (for tests and first setup)."""
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def public_pem(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_id(public_key_pem: bytes) -> str:
    """SHA-256 (hex) of the raw 32-byte public key: what to compare with the published fingerprint."""
    return hashlib.sha256(_public(public_key_pem).public_bytes_raw()).hexdigest()


def sign(key: Ed25519PrivateKey, data: bytes) -> bytes:
    """The Ed25519 signature of ``data``, base64 (ASCII bytes)."""
    return base64.b64encode(key.sign(data))


def verify(public_key_pem: bytes, data: bytes, signature_b64: bytes) -> bool:
    """True if ``signature_b64`` is a valid signature of ``data`` by ``public_key_pem``."""
    try:
        _public(public_key_pem).verify(base64.b64decode(signature_b64, validate=True), data)
    except (InvalidSignature, ValueError):
        return False
    return True


def _public(public_key_pem: bytes) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(public_key_pem)
    except ValueError as exc:
        raise EvidenceError("public key is not PEM") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise EvidenceError("public key is not an Ed25519 key")
    return key
