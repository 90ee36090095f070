"""Ingest: device messages from MQTT, decoded, validated, batched, stored."""
