"""Several emon instances on one broker, PostgreSQL and Redis (issue 11; docs/architecture.md).

Every instance ingests every device topic on its own persistent MQTT session (storage deduplicates);
PostgreSQL decides, by a lease with an epoch, which one instance evaluates and runs the time-based
checks; that instance reads the fixes of every instance from the tables (:mod:`emon.cluster.feed`);
every instance follows devices and cases through LISTEN/NOTIFY (:mod:`emon.cluster.sync`).
"""
