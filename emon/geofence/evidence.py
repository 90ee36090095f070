"""The error model and evidence accumulation: how fixes become a provable breach.

Error model (docs/safety.md): a fix's reported ``acc`` is the 68 % radius of a circular 2-D
Gaussian error, so the per-axis sigma is ``acc / 1.51``. Near a zone edge (locally straight
compared with sigma) the fix's signed distance ``s`` to the forbidden side (metres, positive on
the lawful side) is Gaussian around the true one. Two hypotheses per rule:

* H0, lawful: the person is on the edge (true ``s = 0``; anything further out is easier);
* H1, violating: the person is ``depth_m`` (20 m) on the wrong side (the violation definition).

One fix adds the log-likelihood ratio ``llr(s) = -D (2 s + D) / (2 sigma^2)`` (``D = depth_m``),
capped at ``±llr_cap`` so that no single fix — a multipath outlier with a dishonest 10 m accuracy
lands hundreds of metres off one time in 2,000 — can decide alone. Fixes are correlated over tens
of seconds: a fix ``dt`` seconds after the previous counted one adds ``min(1, dt / tau_s)`` of
its LLR. The sum runs as a repeated Wald test (Page's CUSUM): ``S = max(0, S + w·llr)``; a breach
is proven when ``S >= log(1/alpha)``. Pure functions; no state here.
"""

from __future__ import annotations

import math

SIGMA_PER_ACC = 1.0 / math.sqrt(-2.0 * math.log(1.0 - 0.68))  # 1 / 1.5096


def sigma_m(acc_m: float) -> float:
    """Per-axis standard deviation (metres) of a fix whose 68 % radius is ``acc_m``."""
    return max(acc_m, 1.0) * SIGMA_PER_ACC


def llr(s_m: float, sigma: float, depth_m: float, cap: float) -> float:
    """Log-likelihood ratio violating/lawful of one observed signed distance ``s_m`` (metres,
    positive on the lawful side) with per-axis ``sigma`` (metres), capped at ``±cap``."""
    value = -depth_m * (2.0 * s_m + depth_m) / (2.0 * sigma * sigma)
    return max(-cap, min(cap, value))


def weight(dt_s: float | None, tau_s: float) -> float:
    """How much of an independent observation a fix ``dt_s`` seconds after the previous counted
    one is (1 for the first; correlated errors make close fixes nearly one observation)."""
    if dt_s is None or tau_s <= 0:
        return 1.0
    return max(0.0, min(1.0, dt_s / tau_s))


def threshold(alpha: float) -> float:
    """Wald's upper boundary ``log((1 - beta) / alpha)`` with beta -> 0: prove at ``S >= log(1/alpha)``."""
    return math.log(1.0 / alpha)


def p_violating(s_m: float, sigma: float) -> float:
    """Probability (0..1) that the true position is on the forbidden side, from one fix
    (locally straight boundary: ``Phi(-s / sigma)``)."""
    return 0.5 * math.erfc(s_m / (sigma * math.sqrt(2.0)))
