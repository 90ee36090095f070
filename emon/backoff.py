"""Capped exponential backoff with jitter, for every retry loop at the edges (storage, broker)."""

from __future__ import annotations

import random


class Backoff:
    """Waits of ``first_s``, 2×, 4×, … capped at ``cap_s`` seconds, each jittered to 50–150 %, so
    many clients that failed together do not retry together."""

    def __init__(self, first_s: float, cap_s: float) -> None:
        self.first_s = first_s
        self.cap_s = cap_s
        self._next = first_s

    def reset(self) -> None:
        self._next = self.first_s

    def next_wait(self) -> float:
        """The next wait in seconds (jittered); the one after it is twice as long, up to the cap."""
        wait = self._next * (0.5 + random.random())
        self._next = min(self._next * 2, self.cap_s)
        return wait
