"""Evidence packs per alert: build (from PostgreSQL), sign (Ed25519), verify and replay.

Layout, signing and replay are described in ``docs/evidence.md``. The pure parts — :mod:`.pack`
(files from collected data), :mod:`.verify` and :mod:`.replay` — do no I/O and take time as an argument;
:mod:`.collect` reads PostgreSQL.
"""

from emon.evidence.errors import EvidenceError, PackDamaged

__all__ = ["EvidenceError", "PackDamaged"]
