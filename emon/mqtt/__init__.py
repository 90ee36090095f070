"""emon's one MQTT stack, used by ingest and by the victim notification channel.

- :mod:`emon.mqtt.wire` — the codec (bytes ↔ packets), sans I/O;
- :mod:`emon.mqtt.protocol` — the session rules (handshake, session present, keepalive, resends,
  reconnect backoff), sans I/O with time passed in;
- :mod:`emon.mqtt.endpoint` — host, port, TLS and credentials from ``EMON_MQTT_*``;
- :mod:`emon.mqtt.client` — the asyncio transport that only moves bytes;
- :mod:`emon.mqtt.passwd` — Mosquitto password-file lines for per-device credentials.
"""
