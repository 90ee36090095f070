"""One map from driver errors to emon's: content refusals are isolated, everything else is retried."""

from __future__ import annotations

import psycopg
import pytest
from psycopg_pool import PoolTimeout

from emon.errors import StorageError
from emon.storage.postgres import ContentRefused, translate


@pytest.mark.parametrize(
    ("error", "content"),
    [
        (psycopg.errors.UntranslatableCharacter("unsupported Unicode escape sequence"), True),
        (psycopg.errors.NumericValueOutOfRange("out of range"), True),
        (psycopg.errors.CheckViolation("check"), True),
        (UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"), True),
        (psycopg.OperationalError("connection lost"), False),
        (PoolTimeout("couldn't get a connection after 30 s"), False),
        (psycopg.errors.QueryCanceled("statement timeout"), False),
        (ValueError("a bug, not the message"), False),  # retried: shows as a stall, dead-letters nothing
    ],
)
def test_translate(error: Exception, content: bool) -> None:
    translated = translate(error, "storing")
    assert isinstance(translated, StorageError)
    assert isinstance(translated, ContentRefused) is content
