from __future__ import annotations

from emon.backoff import Backoff


def test_backoff_doubles_to_the_cap_with_jitter_and_resets() -> None:
    b = Backoff(0.5, 4.0)
    waits = [b.next_wait() for _ in range(6)]
    bases = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert all(0.5 * base <= w <= 1.5 * base for w, base in zip(waits, bases, strict=True))
    b.reset()
    assert 0.25 <= b.next_wait() <= 0.75
