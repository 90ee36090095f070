"""Errors of evidence packs, exports and imports (part of emon's tree, see ``emon/errors.py``).

EmonError
└── EvidenceError          a pack, export or key that cannot be made or used
    └── PackDamaged        a pack whose files or signature do not verify (names the file)
"""

from __future__ import annotations

from emon.errors import EmonError


class EvidenceError(EmonError):
    """An evidence pack, export or signing key cannot be made or used."""


class PackDamaged(EvidenceError):
    """A pack failed verification; ``file`` names the member that did not match (or ``manifest.sig``)."""

    def __init__(self, file: str, problem: str) -> None:
        super().__init__(f"{file}: {problem}")
        self.file = file
        self.problem = problem
