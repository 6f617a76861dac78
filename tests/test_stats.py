"""spectral_lab.analyze.stats: the one mean ± std convention of the tables."""

import numpy as np
import pytest

from spectral_lab.analyze.stats import mean_std


def test_mean_std_is_the_sample_std():
    mean, std = mean_std([1.0, 2.0, 6.0])
    assert mean == pytest.approx(3.0)
    assert std == pytest.approx(np.sqrt(((1 - 3) ** 2 + (2 - 3) ** 2 + (6 - 3) ** 2) / 2))  # n - 1 = 2


def test_the_sample_std_of_three_is_sqrt_three_halves_the_population_std():
    values = np.random.default_rng(0).normal(size=3)
    assert mean_std(values)[1] == pytest.approx(np.std(values) * np.sqrt(3 / 2))


def test_one_value_has_no_spread_and_none_has_no_mean():
    assert mean_std([4.0]) == (4.0, 0.0)
    mean, std = mean_std(v for v in [])  # any iterable
    assert np.isnan(mean) and np.isnan(std)
