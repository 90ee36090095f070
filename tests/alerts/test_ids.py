"""Alert, delivery and command ids are fixed forever: the fast uuid5 that derives them is the standard one."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as s

from emon.alerts.commands import command_id_for
from emon.alerts.model import _NAMESPACE, delivery_id_for, uuid5_text
from tests.alerts.helpers import T0

NAMESPACES = [_NAMESPACE, uuid.NAMESPACE_DNS, uuid.UUID(int=0), uuid.UUID(int=(1 << 128) - 1)]


@given(s.sampled_from(NAMESPACES), s.text())
def test_uuid5_text_is_the_standard_uuid5(namespace: uuid.UUID, name: str) -> None:
    assert uuid5_text(namespace, name) == str(uuid.uuid5(namespace, name))


def test_the_ids_stored_before_stay_the_ids() -> None:
    """Ids already in databases, as ``str(uuid.uuid5(...))`` made them (the namespaces are the modules')."""
    alert = str(uuid.uuid5(_NAMESPACE, f"case-1|proximity|{T0.isoformat()}"))
    assert delivery_id_for(alert, "victim", 1) == str(uuid.uuid5(_NAMESPACE, f"{alert}|victim|1"))
    commands = uuid.UUID("0c5a7f2e-9d3b-4e61-8b0a-636d646c6f63")
    assert command_id_for("alert:x", "tag-1", "locate") == str(uuid.uuid5(commands, "alert:x|tag-1|locate"))
