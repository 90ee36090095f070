"""Several emon instances on one broker, PostgreSQL and Redis (issue 11; docs/architecture.md).

Every instance ingests every device topic on its own persistent MQTT session (storage deduplicates).
The cases are split into partitions (:mod:`emon.partitioning`); PostgreSQL leases with an epoch decide
which live instance evaluates each partition (:mod:`emon.cluster.owner`, :mod:`emon.cluster.partition`),
reading the fixes of every instance from the tables; one instance, the coordinator lease's holder, runs
the instance-wide time-based duties (:mod:`emon.cluster.coordinator`); every instance follows devices
and cases through LISTEN/NOTIFY (:mod:`emon.cluster.sync`).
"""
