"""Storage adapters: PostgreSQL (durable record) and Redis (live state)."""
