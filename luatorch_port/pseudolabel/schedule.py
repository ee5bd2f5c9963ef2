"""The unlabelled-loss weight alpha(t) of Lee (2013), "Pseudo-Label: The Simple and Efficient
Semi-Supervised Learning Method for Deep Neural Networks", eq. 16.

alpha(t) = 0 for t < T1; alpha_f (t - T1) / (T2 - T1) for T1 <= t < T2; alpha_f for t >= T2.
The paper used T1 = 100, T2 = 600 epochs and alpha_f = 3 on MNIST (see docs/pseudolabel.md for
the defaults chosen for 4,000 STL-10 labels).
"""

from __future__ import annotations

from ..util.errors import A2Error

LEE_ALPHA_FINAL = 3.0  # Lee (2013), section 3.3


def alpha_schedule(t: float, t1: float, t2: float, alpha_final: float = LEE_ALPHA_FINAL) -> float:
    """alpha(t) for t, T1, T2 in the same unit (epochs or steps).

    ``t2 == t1`` is a step from 0 to ``alpha_final`` at ``t1``.
    """
    if t2 < t1:
        raise A2Error(f"t2={t2} should be >= t1={t1}")
    if alpha_final < 0:
        raise A2Error(f"alpha_final={alpha_final} should be >= 0")
    if t < t1:
        return 0.0
    if t >= t2:
        return float(alpha_final)
    return float(alpha_final) * (t - t1) / (t2 - t1)
