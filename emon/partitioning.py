"""Which partition a case belongs to, and how many partitions each live instance should hold.

Pure functions (no I/O, no clock): the cluster's balancer (:mod:`emon.cluster.owner`) and the evidence
reader both need the same stable answer. A case's partition is a hash of its id, identical in every
process and every Python run (not ``hash()``, which is salted per process).
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Collection
from dataclasses import dataclass

PARTITION_LEASE_PREFIX = "partition-"
# The cluster protocol these partition owners speak; every instance of a cluster must run the same one,
# with the same partition count (both stored in ``cluster_layout``). Protocol 1 was one owner of every
# case under the ``evaluation`` lease.
PROTOCOL = 2


@functools.cache
def partition_of(case_id: str, partitions: int) -> int:
    """The partition (0 ≤ p < ``partitions``) of ``case_id``: the first 8 bytes of its SHA-256, modulo."""
    digest = hashlib.sha256(case_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % partitions


def lease_name(partition: int) -> str:
    """The name of ``partition``'s lease in ``cluster_leases``."""
    return f"{PARTITION_LEASE_PREFIX}{partition}"


def fair_share(partitions: int, live: int) -> int:
    """How many partitions one of ``live`` instances aims to hold: ceil(partitions / live)."""
    return math.ceil(partitions / max(1, live))


@dataclass(frozen=True, slots=True)
class Plan:
    """What one instance does in one renew period: take these free partitions, release this one."""

    take: tuple[int, ...] = ()
    release: int | None = None


def plan(held: Collection[int], free: Collection[int], share: int, start: int = 0) -> Plan:
    """Take free partitions up to ``share``; when above it, release one (the highest), never more per
    period, so partitions move one at a time and a joiner's arrival does not make everyone thrash.
    ``start`` rotates which free partitions are tried first, so instances do not all race for the same."""
    if len(held) > share:
        return Plan(release=max(held))
    wanted = share - len(held)
    if wanted <= 0 or not free:
        return Plan()
    order = sorted(p for p in free if p not in held)
    if order:
        k = start % len(order)
        order = order[k:] + order[:k]
    return Plan(take=tuple(order[:wanted]))
