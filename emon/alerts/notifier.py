"""Turn a decided :class:`Change` into outbox rows, inside the caller's transaction.

One row per recipient per notification round; the row's id is ``delivery_id_for(alert, recipient,
round)``, so deciding the same change twice (a replay) queues nothing new.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from emon.alerts.batch import Batch
from emon.alerts.cap import CapRef, MsgType, build_cap
from emon.alerts.config import AlertConfig
from emon.alerts.messages import owntracks_warning, victim_notification
from emon.alerts.model import CaseInfo, Change, delivery_id_for
from emon.alerts.types import Recipient
from emon.storage import alerts as st


class Notifier:
    def __init__(
        self, config: AlertConfig, webhook_url: str | None, notify_channel: str, *, fresh_s: float = 120.0
    ) -> None:
        self.config = config
        self.webhook_url = webhook_url
        self.notify_channel = notify_channel
        self.fresh_s = fresh_s  # a position older than this is "not fresh" in a CAP message

    def notes(self, change: Change, case: CaseInfo) -> list[tuple[str, dict[str, Any]]]:
        """The history notes (action, detail) of the recipients a change asks for but cannot reach, in
        order: stored by :func:`emon.storage.alerts.save` right after the change's own history row, in
        its statement, where :meth:`enqueue` used to add each with a statement of its own."""
        out: list[tuple[str, dict[str, Any]]] = []
        if Recipient.VICTIM in change.notify and case.victim_device is None:
            out.append(("victim_not_notified", {"reason": "no victim device"}))
        if (Recipient.POLICE in change.notify or change.cancel_police) and self.webhook_url is None:
            out.append(("police_not_notified", {"reason": "no EMON_WEBHOOK_URL configured"}))
        return out

    async def enqueue(
        self,
        conn: st.Conn,
        change: Change,
        case: CaseInfo,
        now: datetime,
        *,
        batch: Batch | None = None,
    ) -> int:
        """Queue the notifications a change asks for (those it cannot reach are :meth:`notes`); return
        how many rows were added. With ``batch``
        (a batch of decisions) reads come from its prefetch and the rows wait for its flush (and its one
        NOTIFY): 0 is returned, the batch counts them."""
        alert = change.alert
        added = 0
        if Recipient.VICTIM in change.notify and case.victim_device is not None:
            if case.victim_owntracks_topic is not None:
                # The OwnTracks app cannot acknowledge: sent once as a remote command it can show.
                nid = delivery_id_for(alert.alert_id, Recipient.VICTIM, alert.notify_seq)
                body = json.dumps(owntracks_warning(alert, nid), ensure_ascii=False).encode()
                added += await self._add(
                    conn,
                    st.Delivery(
                        nid,
                        alert.alert_id,
                        "command",
                        f"{case.victim_owntracks_topic}/cmd",
                        "owntracks_warning",
                        body,
                        case_id=alert.case_id,
                    ),
                    now,
                    batch,
                )
            else:
                nid = delivery_id_for(alert.alert_id, Recipient.VICTIM, alert.notify_seq)
                body = json.dumps(victim_notification(alert, nid, now), ensure_ascii=False).encode()
                added += await self._add(
                    conn,
                    st.Delivery(
                        nid, alert.alert_id, "victim", case.victim_device, "notify", body, requires_ack=True
                    ),
                    now,
                    batch,
                )
        if Recipient.POLICE in change.notify or change.cancel_police:
            added += await self._enqueue_cap(conn, change, now, batch)
        return added

    async def _add(self, conn: st.Conn, d: st.Delivery, now: datetime, batch: Batch | None) -> int:
        if batch is not None:
            batch.queue(d, now)
            return 0
        return int(await st.add_delivery(conn, d, now, self.notify_channel))

    async def _enqueue_cap(self, conn: st.Conn, change: Change, now: datetime, batch: Batch | None) -> int:
        """Queue one CAP message: a new round (Alert, then Update) or the Cancel of a resolved alert,
        referencing every message already queued for the alert. A replay hits the same id: nothing new."""
        alert = change.alert
        if self.webhook_url is None:
            return 0  # noted with the change (notes)
        previous = await (batch or Batch.none()).dispatch_history(conn, alert.alert_id)
        if Recipient.POLICE in change.notify:
            did = delivery_id_for(alert.alert_id, Recipient.POLICE, alert.notify_seq)
            msg_type = MsgType.UPDATE if previous else MsgType.ALERT
        else:
            did = delivery_id_for(alert.alert_id, "police-cancel", 0)
            msg_type = MsgType.CANCEL
        refs = tuple(CapRef(self.config.sender, d, sent) for d, sent in previous)
        note = change.detail.get("reason") if change.action == "escalated" else None
        body = build_cap(
            alert,
            identifier=did,
            sender=self.config.sender,
            sent=now,
            msg_type=msg_type,
            references=refs,
            note=note,
            fresh_s=self.fresh_s,
        )
        return await self._add(
            conn,
            st.Delivery(did, alert.alert_id, "dispatch", self.webhook_url, msg_type.value, body),
            now,
            batch,
        )
