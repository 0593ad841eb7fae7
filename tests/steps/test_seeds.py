"""Seed-to-voxel correlation against nilearn's clean and numpy's corrcoef on series with a planted coupling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from nilearn.signal import clean as nilearn_clean

from bidsapp.steps import denoise, strategies
from bidsapp.steps.seeds import changed_directions, seed_correlation

N = 120


def _denoising(name: str, **options):
    rng = np.random.default_rng(3)
    table = pd.DataFrame({column: rng.normal(size=N) for column in
                          ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z", "csf", "white_matter")})
    table["cosine00"] = np.cos(np.pi * (np.arange(N) + 0.5) / N)
    table["framewise_displacement"] = np.r_[np.nan, rng.gamma(1.0, 0.1, N - 1)]
    table["std_dvars"] = np.r_[np.nan, rng.normal(1, 0.2, N - 1)]
    table.loc[[40, 41, 90], "framewise_displacement"] = 2.0
    strategy = strategies.with_options(strategies.load_strategy(name), dummy_scans=3, **options)
    return strategy, denoise.select_confounds(table, None, strategy, path="sub-01_desc-confounds_timeseries.tsv")


@pytest.mark.parametrize(("name", "options", "few_directions"), [
    ("simple", {}, True), ("scrubbing", {}, True), ("simple", {"high_pass_hz": 0.01, "low_pass_hz": 0.1}, False)])
def test_seed_correlation_is_corrcoef_of_cleaned_series(name, options, few_directions):
    strategy, denoising = _denoising(name, **options)
    rng = np.random.default_rng(5)
    seed = 1000 + rng.normal(0, 10, N).cumsum()
    coupling = np.linspace(-2, 2, 300)
    voxels = 800 + np.outer(seed - 1000, coupling) + rng.normal(0, 15, (N, 300)) + np.arange(N)[:, None] * 0.5
    voxels = voxels.astype(np.float32)
    cleaner = denoise.cleaning_matrix(strategy, denoising, 2.0)
    assert (changed_directions((cleaner - cleaner.mean(axis=0)).T @ (cleaner - cleaner.mean(axis=0))) is not None) \
        == few_directions
    r = seed_correlation(cleaner, seed, voxels, block=64)  # 64 does not divide the 300 voxels
    parameters = denoise.clean_parameters(strategy, denoising, 2.0)
    cleaned = nilearn_clean(np.c_[seed, voxels.astype(float)], standardize=None, **parameters)
    expected = np.corrcoef(cleaned.T)[0, 1:]
    np.testing.assert_allclose(r, expected, atol=1e-10)
    assert np.corrcoef(coupling, r)[0, 1] > 0.9  # the planted coupling is recovered
