"""The cue summary's order statistics are numpy's, to the bit."""

from __future__ import annotations

import numpy as np
import pytest

from emoscribe.cues import stats


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7, 20, 99, 100, 101, 1000])
def test_quantile_and_median_equal_numpy(size: int) -> None:
    rng = np.random.default_rng(size)
    for draw in range(30):
        values = rng.normal(60.0, 10.0, size)
        if draw % 3 == 0:
            values = np.round(values)  # ties
        for q in (0.0, 0.05, 0.25, 0.5, 0.95, 0.99, 1.0, rng.uniform()):
            assert stats.quantile(values, q) == np.quantile(values, q), (size, q)
        assert stats.median(values) == np.median(values)


def test_inputs_are_left_alone() -> None:
    values = np.array([3.0, 1.0, 2.0])
    stats.quantile(values, 0.5)
    stats.median(values)
    assert values.tolist() == [3.0, 1.0, 2.0]
