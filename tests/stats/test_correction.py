"""FDR and Bonferroni thresholds against statsmodels' multipletests and nilearn's threshold_stats_img."""

from __future__ import annotations

import warnings

import nibabel as nib
import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from bidsapp.errors import UsageError
from bidsapp.stats.correction import bonferroni_adjusted, fdr_adjusted, height_threshold
from bidsapp.stats.parametric import compute_contrast, fit_ols

SHAPE = (10, 12, 8)


@pytest.fixture(scope="module")
def t_map():
    """A one-sample t map (19 dof) with a planted effect in a corner block."""
    rng = np.random.default_rng(0)
    data = rng.standard_normal((20, int(np.prod(SHAPE))))
    effect = np.zeros(SHAPE, bool)
    effect[:4, :4, :4] = True
    data[:, effect.ravel()] += 1.2
    return compute_contrast(fit_ols(data, np.ones((20, 1))), np.array([1.0]))


def _nilearn(z: np.ndarray, method: str, alpha: float, two_sided: bool):
    from nilearn.glm import threshold_stats_img

    image = nib.Nifti1Image(z.reshape(SHAPE), np.eye(4))
    mask = nib.Nifti1Image(np.ones(SHAPE, np.uint8), np.eye(4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        thresholded, threshold = threshold_stats_img(image, mask_img=mask, alpha=alpha, height_control=method,
                                                     two_sided=two_sided)
    return thresholded.get_fdata().ravel() != 0, float(threshold)


@pytest.mark.parametrize("method", ["fdr", "bonferroni", "fpr"])
@pytest.mark.parametrize("two_sided", [True, False])
def test_thresholds_match_threshold_stats_img(t_map, method, two_sided):
    p = t_map.p if two_sided else stats.norm.sf(t_map.z)
    ours = height_threshold(p, method=method, alpha=0.05, two_sided=two_sided)
    mask, z_threshold = _nilearn(t_map.z, method, 0.05, two_sided)
    assert ours.n_tests == t_map.p.size
    assert ours.z == pytest.approx(z_threshold, rel=1e-6)
    np.testing.assert_array_equal(ours.mask(p), mask)
    assert 10 < mask.sum() < 100 or method == "fpr"  # the planted block (64 voxels), partly found


@pytest.mark.parametrize(("method", "name"), [("fdr", "fdr_bh"), ("bonferroni", "bonferroni")])
def test_masks_and_adjusted_p_match_multipletests(t_map, method, name):
    reject, corrected, _, _ = multipletests(t_map.p, alpha=0.05, method=name)
    threshold = height_threshold(t_map.p, method=method, alpha=0.05)
    np.testing.assert_array_equal(threshold.mask(t_map.p), reject)
    adjusted = fdr_adjusted(t_map.p) if method == "fdr" else bonferroni_adjusted(t_map.p)
    np.testing.assert_allclose(adjusted, corrected, rtol=1e-12)


def test_nan_is_not_a_test_and_no_discovery_gives_nan_threshold():
    p = np.array([0.001, 0.02, np.nan, 0.04, 0.5])
    threshold = height_threshold(p, method="fdr", alpha=0.05)
    assert threshold.n_tests == 4 and threshold.p == 0.02
    np.testing.assert_array_equal(threshold.mask(p), [True, True, False, False, False])
    assert np.isnan(fdr_adjusted(p)[2])
    nothing = height_threshold(np.array([0.3, 0.6, 0.9]), method="fdr", alpha=0.05)
    assert np.isnan(nothing.p) and nothing.z == np.inf and not nothing.mask(np.array([0.3, 0.0])).any()
    assert height_threshold(p, method="bonferroni", alpha=0.05).p == pytest.approx(0.0125)
    with pytest.raises(UsageError, match="--alpha 1.5"):
        height_threshold(p, method="fdr", alpha=1.5)
