"""The first-level engine (bidsapp.steps.glm) on its own: planted effects against statsmodels and nilearn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from nilearn.glm.contrasts import compute_contrast
from nilearn.glm.first_level import mean_scaling, run_glm
from scipy import stats

from bidsapp.steps.connectivity import fisher_z, fisher_z_matrix, parcel_connectivity
from bidsapp.steps.glm.contrasts import STATISTICS, Contrast, condition_weights, contrast_vector, estimable
from bidsapp.steps.glm.design import design_matrix
from bidsapp.steps.glm.fit import effect_units, fit_run, percent_signal_change
from bidsapp.steps.glm.fixed_effects import ContrastMaps, combine_runs

TR = 2.0
N_VOLUMES = 80
N_UNITS = 30
PLANTED = 2.0  # percent signal change of condition a in the first 10 units


def _events(conditions=("a", "b")) -> pd.DataFrame:
    onsets = np.arange(8.0, N_VOLUMES * TR - 20, 24.0)
    return pd.DataFrame({"onset": onsets, "duration": 10.0,
                         "trial_type": [conditions[k % len(conditions)] for k in range(len(onsets))],
                         "modulation": 1.0})


def _data(design: pd.DataFrame, seed: int) -> np.ndarray:
    """Baseline 500, white noise, condition a planted (in percent of baseline) in the first 10 units."""
    rng = np.random.default_rng(seed)
    effect = np.zeros(N_UNITS)
    effect[:10] = PLANTED * 5.0
    return 500.0 + rng.normal(scale=2.0, size=(N_VOLUMES, N_UNITS)) + np.outer(design["a"], effect)


@pytest.fixture(scope="module")
def runs():
    """Two runs: (design, data)."""
    out = []
    for seed in (0, 1):
        design = design_matrix(_events(), N_VOLUMES, TR)
        out.append((design, _data(design, seed)))
    return out


def test_statistics_are_the_contrast_maps_fields():
    assert [s.name for s in STATISTICS] == ["effect", "variance", "t", "z", "p"]
    assert all(s.name in ContrastMaps.__dataclass_fields__ for s in STATISTICS)


def test_percent_signal_change_is_nilearns_mean_scaling(runs):
    _, data = runs[0]
    np.testing.assert_array_equal(percent_signal_change(data), mean_scaling(data)[0])
    as_float32 = data.astype(np.float32)
    assert percent_signal_change(as_float32).dtype == np.float32
    assert effect_units(data) == "percent signal change"
    assert effect_units(data - data.mean(axis=0)) == "data units"


def test_estimable_and_condition_weights():
    contrasts = [Contrast("a", "a"), Contrast("aMinusC", "a - c"), Contrast("half", "0.5*a + 0.5*b")]
    assert [c.name for c in estimable(contrasts, ["a", "b", "drift_1", "constant"])] == ["a", "half"]
    assert condition_weights(contrasts[2], ["a", "b"]) == {"a": 0.5, "b": 0.5}


def test_ols_run_equals_statsmodels(runs):
    """One run, OLS: effect, variance, t and p of each unit against statsmodels' OLS t test."""
    design, data = runs[0]
    scaled = percent_signal_change(data)
    fitted = fit_run("run-1", data, design, [Contrast("aMinusB", "a - b")], noise_model="ols",
                     signal_scaling=True)
    result = fitted.contrasts["aMinusB"]
    vector = contrast_vector(Contrast("aMinusB", "a - b"), design.columns)
    for unit in (0, 5, 20):
        test = sm.OLS(scaled[:, unit], design.to_numpy()).fit().t_test(vector)
        np.testing.assert_allclose(result.effect[unit], test.effect[0], rtol=1e-8)
        np.testing.assert_allclose(result.variance[unit], test.sd[0, 0] ** 2, rtol=1e-8)
        np.testing.assert_allclose(result.stat()[unit], test.tvalue[0, 0], rtol=1e-8)
        np.testing.assert_allclose(result.p_value()[unit], stats.t.sf(test.tvalue[0, 0], test.df_denom), rtol=1e-6)


@pytest.mark.parametrize("noise_model", ["ar1", "ols"])
def test_fixed_effects_over_runs_with_different_units(runs, noise_model):
    """Runs with different units (masks): each contrast covers the units every run has, combined as nilearn does.

    The reference fits each run with nilearn's run_glm + compute_contrast on the
    common units and combines the run contrasts (sum scaled by 1/n_runs).
    """
    contrast = Contrast("a", "a")
    masks = [np.ones(N_UNITS, bool), np.ones(N_UNITS, bool)]
    masks[0][25:] = False
    masks[1][[3, 27]] = False
    fits = [fit_run(f"run-{k}", data[:, masks[k]], design, [contrast, Contrast("aMinusC", "a - c")],
                    units=masks[k], noise_model=noise_model, signal_scaling=True)
            for k, (design, data) in enumerate(runs)]
    assert list(fits[0].contrasts) == ["a"]  # c is not in the design
    combined = combine_runs(fits, [contrast, Contrast("aMinusC", "a - c")])
    assert list(combined) == ["a"]
    common = masks[0] & masks[1]
    np.testing.assert_array_equal(combined["a"].units, common)
    assert combined["a"].runs == ("run-0", "run-1")
    references = []
    for design, data in runs:
        labels, results = run_glm(mean_scaling(data)[0][:, common], design.to_numpy(), noise_model=noise_model)
        references.append(compute_contrast(labels, results, contrast_vector(contrast, design.columns),
                                           stat_type="t"))
    reference = (references[0] + references[1]) * 0.5
    maps = combined["a"].maps
    np.testing.assert_allclose(maps.effect, np.ravel(reference.effect_size()), rtol=1e-8)
    np.testing.assert_allclose(maps.variance, np.ravel(reference.effect_variance()), rtol=1e-8)
    np.testing.assert_allclose(maps.z, np.ravel(reference.z_score()), rtol=1e-6, atol=1e-9)
    assert maps.dof == reference.dof
    planted = np.flatnonzero(common) < 10  # units 0-9 but 3 (outside run 1's mask)
    assert planted.sum() == 9
    assert np.abs(maps.effect[planted] - PLANTED).max() < 0.3  # the planted effect, in percent signal change
    assert maps.z[planted].min() > 5 and np.abs(maps.z[~planted]).max() < 4


def test_fisher_z_and_parcel_connectivity():
    rng = np.random.default_rng(2)
    cleaned = rng.normal(size=(50, 6))
    cleaned[:, 1] += cleaned[:, 0]
    valid = np.array([True, True, False, True, True, True])
    result = parcel_connectivity(cleaned, valid, ["correlation", "covariance"], ["x", "x", "y", "y", "z", "z"])
    r = result.matrices["correlation"]
    np.testing.assert_allclose(r[np.ix_(valid, valid)], np.corrcoef(cleaned[:, valid].T), atol=1e-12)
    assert np.isnan(r[2]).all() and np.isnan(r[:, 2]).all()
    np.testing.assert_array_equal(fisher_z(np.array([0.5, 1.0])), np.arctanh([0.5, 1.0 - 1e-7]))
    z = fisher_z_matrix(r)
    assert np.isnan(np.diag(z)).all()
    np.testing.assert_array_equal(result.fisher_z, z)
    assert result.networks.loc["x", "x"] == pytest.approx(z[0, 1])
    assert not result.warnings
