"""Permutation p values against plain numpy oracles: every resample enumerated, or the same random ones.

The oracles recompute each resample's statistic in float64 with numpy (one OLS per resample, a Python
loop: fine for a test) and count ``#{max >= observed} / n`` over every enumerated resample, the identity
included, or ``(1 + #{null >= observed}) / (1 + n_perm)`` over the given random ones.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import ndimage, stats

from bidsapp.errors import NoDataError
from bidsapp.stats.permutation import permutation_test
from bidsapp.stats.resampling import draw_resamples


def _strong(n_rows: int, n_features: int, seed: int) -> np.ndarray:
    """Noise with effects from weak to very strong (|t| up to ~150, where float32 rounding bit)."""
    data = np.random.default_rng(seed).standard_normal((n_rows, n_features))
    data[:, : n_features // 10] += np.linspace(1, 30, n_features // 10)
    return data


def _all_signs(n_rows: int) -> np.ndarray:
    return np.array(list(itertools.product((1, -1), repeat=n_rows)))


def _t(data: np.ndarray, design: np.ndarray, contrast: np.ndarray) -> np.ndarray:
    """OLS t of one contrast, every column of ``data``, float64."""
    beta, *_ = np.linalg.lstsq(design, data, rcond=None)
    residuals = data - design @ beta
    dof = design.shape[0] - np.linalg.matrix_rank(design)
    variance = (residuals**2).sum(axis=0) / dof
    return contrast @ beta / np.sqrt(variance * (contrast @ np.linalg.pinv(design.T @ design) @ contrast))


def _signflip_null(data, design, contrast, signs, two_sided):
    """Freedman-Lane sign flips: flip the residuals of the nuisance model, add its fit back, refit."""
    nuisance = design @ np.linalg.svd(np.atleast_2d(contrast))[2][1:].T
    fitted = nuisance @ np.linalg.lstsq(nuisance, data, rcond=None)[0] if nuisance.shape[1] else 0 * data
    maxima = []
    for flip in signs:
        t = _t(flip[:, None] * (data - fitted) + fitted, design, contrast)
        maxima.append(np.abs(t).max() if two_sided else t.max())
    return np.array(maxima)


def _count(observed, null, exhaustive):
    exceed = (null[None, :] >= observed[:, None] * (1 - 1e-9)).sum(axis=1)
    return exceed / null.size if exhaustive else (1 + exceed) / (1 + null.size)


@pytest.mark.parametrize("two_sided", [True, False])
@pytest.mark.parametrize("n_rows", [6, 8])
def test_every_sign_flip_enumerated_matches_the_numpy_oracle(n_rows, two_sided):
    data = _strong(n_rows, 60, seed=n_rows)
    design, contrast = np.ones((n_rows, 1)), np.array([1.0])
    result = permutation_test(data, design, contrast, n_perm=1000, two_sided=two_sided, alpha=0.05, n_jobs=1)
    assert result.exhaustive and result.n_perm == 2**n_rows
    t = _t(data, design, contrast)
    null = _signflip_null(data, design, contrast, _all_signs(n_rows), two_sided)
    expected = _count(np.abs(t) if two_sided else t, null, exhaustive=True)
    np.testing.assert_array_equal(result.p_fwe, expected)
    smallest = (2 if two_sided else 1) / 2**n_rows  # the identity, and its mirror image when two-sided
    assert result.smallest_p == smallest and result.p_fwe.min() == smallest
    assert "exact enumeration of the" in result.p_rule and result.metadata()["smallest_p"] == smallest


def test_sign_flips_with_a_covariate_and_the_f_test_match_the_oracle():
    rng = np.random.default_rng(1)
    age = rng.normal(0, 1, 7)
    data = _strong(7, 40, seed=2) + 0.5 * age[:, None]
    design = np.column_stack([np.ones(7), age])
    result = permutation_test(data, design, np.array([1.0, 0.0]), n_perm=200, n_jobs=1)
    assert result.scheme == "signflip" and result.exhaustive and result.n_perm == 128
    null = _signflip_null(data, design, np.array([1.0, 0.0]), _all_signs(7), two_sided=True)
    expected = _count(np.abs(_t(data, design, np.array([1.0, 0.0]))), null, exhaustive=True)
    np.testing.assert_array_equal(result.p_fwe, expected)
    assert result.p_fwe.min() == 2 / 128
    f_test = permutation_test(data, design, np.array([[1.0, 0.0]]), n_perm=200, n_jobs=1)
    assert f_test.stat_type == "F" and f_test.smallest_p == 2 / 128  # F is symmetric too
    np.testing.assert_array_equal(f_test.p_fwe, result.p_fwe)


def test_random_sign_flips_count_the_observed_once():
    data = _strong(14, 50, seed=3)
    design, contrast = np.ones((14, 1)), np.array([1.0])
    signs, exhaustive = draw_resamples("signflip", 14, 300, None, seed=11)
    assert not exhaustive and len(signs) == 300
    signs[[5, 17]] = 1  # the identity drawn twice: both give back the observed maximum exactly
    signs[40] = -1  # and its mirror image
    result = permutation_test(data, design, contrast, n_perm=300, resamples=signs, n_jobs=1)
    null = _signflip_null(data, design, contrast, signs, two_sided=True)
    expected = _count(np.abs(_t(data, design, contrast)), null, exhaustive=False)
    np.testing.assert_array_equal(result.p_fwe, expected)
    assert result.p_fwe.min() == 4 / 301 and result.smallest_p == 1 / 301
    seeded = permutation_test(data, design, contrast, n_perm=300, random_state=11, n_jobs=2)
    assert seeded.p_fwe.min() >= 1 / 301 and seeded.p_rule.startswith("(1 + #{null >= observed}) / (1 + n_perm)")
    np.testing.assert_array_equal(seeded.p_fwe, _count(np.abs(_t(data, design, contrast)), _signflip_null(
        data, design, contrast, draw_resamples("signflip", 14, 300, None, seed=11)[0], True), exhaustive=False))


def test_every_permutation_enumerated_for_a_small_two_sample_design():
    labels = np.array([1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    design, contrast = np.column_stack([labels, 1 - labels]), np.array([1.0, -1.0])
    data = np.random.default_rng(4).standard_normal((7, 30))
    data[:3, :6] += np.linspace(2, 40, 6)
    result = permutation_test(data, design, contrast, n_perm=6000, n_jobs=1)
    assert result.scheme == "permutation" and result.exhaustive and result.n_perm == 5040
    orders = np.array(list(itertools.permutations(range(7))))
    null = np.array([np.abs(stats.ttest_ind(data[labels[order] == 1], data[labels[order] == 0]).statistic).max()
                     for order in orders])
    observed = np.abs(stats.ttest_ind(data[:3], data[3:]).statistic)
    np.testing.assert_array_equal(result.p_fwe, _count(observed, null, exhaustive=True))
    assert result.smallest_p == pytest.approx(1 / 35) and result.p_fwe.min() == pytest.approx(1 / 35)  # C(7, 3)
    assert "within exchangeability blocks" in result.p_rule


def test_paired_permutations_enumerated_equal_sign_flips_of_the_differences():
    rng = np.random.default_rng(6)
    differences = _strong(8, 40, seed=7)
    base = rng.normal(0, 3, (8, 40))
    data = np.empty((16, 40))
    data[0::2], data[1::2] = base + differences, base
    design = np.column_stack([np.tile([1.0, -1.0], 8) / 2, np.kron(np.eye(8), np.ones((2, 1)))])
    paired = permutation_test(data, design, np.eye(9)[0], n_perm=1000, blocks=np.repeat(np.arange(8), 2), n_jobs=1)
    flipped = permutation_test(differences, np.ones((8, 1)), np.array([1.0]), n_perm=1000, n_jobs=1)
    assert paired.scheme == "permutation" and paired.exhaustive and paired.n_perm == 256
    np.testing.assert_allclose(paired.stat, flipped.stat, rtol=1e-9)
    np.testing.assert_array_equal(paired.p_fwe, flipped.p_fwe)
    assert paired.smallest_p == flipped.smallest_p == 2 / 256 and paired.p_fwe.min() == 2 / 256


def test_cluster_and_tfce_p_values_are_exact_and_never_below_the_smallest():
    shape = (7, 7, 6)
    rng = np.random.default_rng(8)
    maps = ndimage.gaussian_filter(rng.standard_normal((8, *shape)), (0, 1, 1, 1)) * 3
    maps[:, 1:4, 1:4, 1:4] += 4.0
    mask = np.ones(shape, bool)
    data = maps.reshape(8, -1)
    result = permutation_test(data, np.ones((8, 1)), np.array([1.0]), n_perm=1000, mask=mask, height_threshold=0.01,
                              with_tfce=True, n_jobs=1)
    assert result.exhaustive and result.smallest_p == 2 / 256
    sizes = []
    for flip in _all_signs(8):  # oracle: float64 t maps, clusters of |t| > threshold split by sign
        t = _t(flip[:, None] * data, np.ones((8, 1)), np.array([1.0])).reshape(shape)
        largest = 0
        for sign in (1, -1):
            labels, count = ndimage.label(sign * t > result.cluster_threshold)
            largest = max(largest, np.bincount(labels.ravel())[1:].max(initial=0))
        sizes.append(largest)
    expected = _count(result.clusters.size, np.array(sizes, float), exhaustive=True)
    in_cluster = result.clusters.size > 0
    np.testing.assert_array_equal(result.p_fwe_size[in_cluster], expected[in_cluster])
    for p in (result.p_fwe, result.p_fwe_size, result.p_fwe_mass, result.p_fwe_tfce):
        assert p.min() == 2 / 256  # the planted block is the strongest: only the identity and its mirror reach it


def test_too_few_enumerated_permutations_are_refused_with_the_smallest_p():
    labels = np.array([1.0, 1.0, 0.0, 0.0, 0.0])
    with pytest.raises(NoDataError, match=r"only 120 permutations within the exchangeability blocks exist and the "
                                          r"smallest FWE p value is 0.1"):
        permutation_test(np.random.default_rng(0).standard_normal((5, 4)), np.column_stack([labels, 1 - labels]),
                         np.array([1.0, -1.0]), n_perm=1000)
