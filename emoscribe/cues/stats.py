"""Order statistics of 1-D float arrays, computed as numpy's ``quantile`` and ``median`` compute them.

numpy's functions spend tens of microseconds per call in argument handling; the rolling cues summarise twice a
second per speaking call, so these take the same order statistics with one ``partition`` and do numpy's
arithmetic on them (``method="linear"``: virtual index ``(n - 1) q``, and its ``_lerp``, which interpolates
from the upper neighbour for weights of one half and more). ``tests/test_cue_stats.py`` checks that the results
are numpy's to the bit.
"""

from __future__ import annotations

import math

import numpy as np


def quantile(values: np.ndarray, q: float) -> float:
    """``np.quantile(values, q)`` for a non-empty array without NaN and ``0 <= q <= 1``."""
    last = values.size - 1
    virtual = last * q
    if virtual >= last:
        return float(values.max())
    below = math.floor(virtual)
    part = np.partition(values, (below, below + 1))
    low, high = float(part[below]), float(part[below + 1])
    weight = virtual - below
    difference = high - low
    return high - difference * (1 - weight) if weight >= 0.5 else low + difference * weight


def median(values: np.ndarray) -> float:
    """``np.median(values)`` for a non-empty array without NaN."""
    half = values.size // 2
    if values.size % 2:
        return float(np.partition(values, half)[half])
    part = np.partition(values, (half - 1, half))
    return (float(part[half - 1]) + float(part[half])) / 2.0
