"""Alerts: from evaluation decisions and device events to warnings that reach people.

Pure core (``routing``, ``lifecycle``, ``silence``, ``cap``, ``messages``), storage (``store``), the
durable outbox worker (``outbox``) and one delivery channel per file under ``channels``; the
:class:`~emon.alerts.service.AlertService` ties them together at the edge.
"""
