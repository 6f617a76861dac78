"""Summary statistics shared by the tables: one convention for "mean ± std" everywhere."""

from __future__ import annotations

from typing import Iterable

import numpy as np

__all__ = ["mean_std"]


def mean_std(values: Iterable[float]) -> tuple[float, float]:
    """Mean and *sample* standard deviation of ``values``, in float64.

    The std has ``ddof=1`` (Bessel's correction: sqrt(Σ (v − mean)² / (n − 1))), the estimate
    of the spread of the population the runs, seeds or pairs are drawn from — what a ± over a
    few seeds means. For one value it is 0.0 (no spread can be measured; the table shows the
    count next to it where that matters); for no values both are NaN.
    """
    v = np.asarray(list(values), dtype=np.float64)
    if v.size == 0:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0
