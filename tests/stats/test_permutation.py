"""The permutation engine against nilearn given the same resamples, brute force, and known error rates.

nilearn (``permuted_ols``, which ``non_parametric_inference`` calls) draws with
``RandomState(random_state)``: one seed per job from ``randint(1, 2**31 - 2)``, then per permutation a
sign vector ``randint(2, size=(n, 1)) * 2 - 1`` that multiplies the already flipped data (so the flips
are cumulative products), or a ``permutation(n)`` applied to the already shuffled design rows.
``_nilearn_resamples`` replays that for ``n_jobs=1`` so both engines see the same resamples.
"""

from __future__ import annotations

import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy import linalg, ndimage, stats

from bidsapp.errors import NoDataError, UsageError
from bidsapp.stats.design import group_design
from bidsapp.stats.parametric import compute_contrast, fit_ols
from bidsapp.stats.permutation import permutation_test
from bidsapp.stats.resampling import draw_resamples
from bidsapp.stats.spatial import cluster_maps, tfce, voxel_graph

SHAPE = (10, 11, 9)


def _nilearn_resamples(kind: str, n_perm: int, n_rows: int, seed: int) -> np.ndarray:
    job = np.random.RandomState(np.random.RandomState(seed).randint(1, np.iinfo(np.int32).max - 1))
    current, draws = (np.ones(n_rows, int), []) if kind == "signflip" else (np.arange(n_rows), [])
    for _ in range(n_perm):
        if kind == "signflip":
            current = current * (job.randint(2, size=(n_rows, 1)) * 2 - 1)[:, 0]
        else:
            current = current[job.permutation(n_rows)]
        draws.append(current)
    return np.array(draws)


@pytest.fixture(scope="module")
def volumes():
    """20 smooth maps on a small grid with a planted effect in one block; mask leaves a border out."""
    rng = np.random.default_rng(0)
    maps = ndimage.gaussian_filter(rng.standard_normal((20,) + SHAPE), (0, 1, 1, 1)) * 3
    maps[:, 2:5, 2:5, 2:5] += 1.0
    mask = np.zeros(SHAPE, bool)
    mask[1:-1, 1:-1, 1:-1] = True
    mask[5, 5, 4] = False
    return maps[:, mask], mask


def _nilearn_permuted_ols(data, mask, tested, confounds, two_sided, n_perm, seed):
    from nilearn.maskers import NiftiMasker
    from nilearn.mass_univariate import permuted_ols

    masker = NiftiMasker(mask_img=nib.Nifti1Image(mask.astype(np.uint8), np.eye(4))).fit()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return permuted_ols(tested, data, confounding_vars=confounds, model_intercept=True, n_perm=n_perm,
                            two_sided_test=two_sided, random_state=seed, n_jobs=1, masker=masker, threshold=0.01,
                            tfce=True)


@pytest.mark.parametrize("two_sided", [True, False])
def test_sign_flips_match_nilearn_non_parametric_inference(volumes, two_sided):
    from nilearn.glm.second_level import non_parametric_inference

    data, mask = volumes
    n_rows, n_perm = data.shape[0], 60
    images = [nib.Nifti1Image(_unmask(row, mask), np.eye(4)) for row in data]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        maps = non_parametric_inference(images, design_matrix=pd.DataFrame({"intercept": np.ones(n_rows)}),
                                        mask=nib.Nifti1Image(mask.astype(np.uint8), np.eye(4)), n_perm=n_perm,
                                        two_sided_test=two_sided, random_state=7, n_jobs=1, threshold=0.01,
                                        tfce=True)
    nulls = _nilearn_permuted_ols(data, mask, np.ones((n_rows, 1)), None, two_sided, n_perm, 7)
    flips = _nilearn_resamples("signflip", n_perm, n_rows, 7)
    ours = permutation_test(data, np.ones((n_rows, 1)), np.array([1.0]), n_perm=n_perm, two_sided=two_sided,
                            mask=mask, height_threshold=0.01, with_tfce=True, resamples=flips, dtype=np.float64,
                            n_jobs=1)
    nilearn = {key: image.get_fdata()[mask] for key, image in maps.items()}
    assert ours.scheme == "signflip" and ours.n_perm == n_perm
    np.testing.assert_allclose(ours.stat, nilearn["t"], rtol=1e-10)
    np.testing.assert_allclose(ours.null_max, nulls["h0_max_t"][0], rtol=1e-10)
    np.testing.assert_allclose(ours.p_fwe, 10 ** -nilearn["logp_max_t"], rtol=1e-10)
    np.testing.assert_array_equal(ours.null_max_size, nulls["h0_max_size"][0])
    np.testing.assert_allclose(ours.null_max_mass, nulls["h0_max_mass"][0], rtol=1e-10)
    np.testing.assert_array_equal(ours.clusters.size, nilearn["size"])
    np.testing.assert_allclose(ours.clusters.mass, nilearn["mass"], rtol=1e-10)
    np.testing.assert_allclose(ours.tfce, nilearn["tfce"], rtol=1e-10)
    np.testing.assert_allclose(ours.null_max_tfce, nulls["h0_max_tfce"][0], rtol=1e-10)
    np.testing.assert_allclose(ours.p_fwe_tfce, 10 ** -nilearn["logp_max_tfce"], rtol=1e-10)
    in_cluster = ours.clusters.size > 0  # nilearn's cluster p is #{null >= x} / n_perm, ours (1 + #) / (n_perm + 1)
    exceed = (nulls["h0_max_mass"][0][None, :] >= ours.clusters.mass[in_cluster, None] - 1e-9).sum(axis=1)
    np.testing.assert_allclose(ours.p_fwe_mass[in_cluster], (1 + exceed) / (n_perm + 1))
    np.testing.assert_allclose(10 ** -nilearn["logp_max_mass"][in_cluster], np.clip(exceed / n_perm, 1 / n_perm, 1))

    single = permutation_test(data, np.ones((n_rows, 1)), np.array([1.0]), n_perm=n_perm, two_sided=two_sided,
                              mask=mask, height_threshold=0.01, with_tfce=True, resamples=flips, n_jobs=1)
    np.testing.assert_allclose(single.null_max, ours.null_max, rtol=1e-5)  # float32 products
    np.testing.assert_allclose(single.null_max_tfce, ours.null_max_tfce, rtol=1e-4)
    np.testing.assert_allclose(single.p_fwe, ours.p_fwe, atol=2 / (n_perm + 1))
    assert (single.p_fwe[_effect_voxels(mask)] < 0.05).all()


def _unmask(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    volume = np.zeros(mask.shape)
    volume[mask] = values
    return volume


def _effect_voxels(mask: np.ndarray) -> np.ndarray:
    block = np.zeros(mask.shape, bool)
    block[2:5, 2:5, 2:5] = True
    return block[mask]


@pytest.mark.parametrize("design_kind", ["twosample-covariate", "onesample-covariate"])
def test_freedman_lane_matches_nilearn(volumes, design_kind):
    data, mask = volumes
    rng = np.random.default_rng(3)
    participants = pd.DataFrame({"participant_id": [f"sub-{i}" for i in range(20)], "age": rng.normal(40, 9, 20),
                                 "group": np.repeat(["a", "b"], 10)})
    data = data + 0.05 * participants["age"].to_numpy()[:, None]
    if design_kind == "twosample-covariate":
        design = group_design(participants, "twosample", group_column="group", covariates=["age"])
        contrast, tested, kind = design.contrasts["aMinusB"], np.repeat([1.0, -1.0], 10)[:, None], "permutation"
    else:
        design = group_design(participants, "onesample", covariates=["age"])
        contrast, tested, kind = design.contrasts["mean"], np.ones((20, 1)), "signflip"
    confounds = design.matrix[["age"]].to_numpy()
    nilearn = _nilearn_permuted_ols(data, mask, tested, confounds, True, 50, 11)
    ours = permutation_test(data, design.matrix.to_numpy(), contrast, n_perm=50, mask=mask, height_threshold=0.01,
                            with_tfce=True, resamples=_nilearn_resamples(kind, 50, 20, 11), dtype=np.float64,
                            n_jobs=1)
    assert ours.scheme == kind
    np.testing.assert_allclose(ours.stat, nilearn["t"][0], rtol=1e-9)
    parametric = compute_contrast(fit_ols(data, design.matrix.to_numpy()), contrast)
    np.testing.assert_allclose(ours.stat, parametric.stat, rtol=1e-9)
    np.testing.assert_allclose(ours.null_max, nilearn["h0_max_t"][0], rtol=1e-9)
    np.testing.assert_allclose(ours.p_fwe, 10 ** -nilearn["logp_max_t"][0], rtol=1e-9)
    np.testing.assert_allclose(ours.null_max_mass, nilearn["h0_max_mass"][0], rtol=1e-9)
    np.testing.assert_allclose(ours.null_max_tfce, nilearn["h0_max_tfce"][0], rtol=1e-9)


def test_exhaustive_sign_flips_give_the_exact_max_t_null():
    rng = np.random.default_rng(4)
    data = rng.standard_normal((8, 30))
    data[:, :3] += 1.5
    result = permutation_test(data, np.ones((8, 1)), np.array([1.0]), n_perm=1000, alpha=0.05, n_jobs=1)
    assert result.exhaustive and result.n_perm == 256
    signs = np.array([[1 - 2 * ((code >> bit) & 1) for bit in range(8)] for code in range(256)])
    brute = np.array([np.abs(stats.ttest_1samp(s[:, None] * data, 0).statistic).max() for s in signs])
    np.testing.assert_allclose(np.sort(result.null_max), np.sort(brute), rtol=1e-5)
    expected = (brute[None, :] >= np.abs(result.stat)[:, None] * (1 - 1e-5)).sum(axis=1) / 256
    np.testing.assert_allclose(result.p_fwe, expected)
    assert result.p_fwe.min() >= 2 / 256  # the identity and its mirror image always count


def test_within_block_permutation_matches_brute_force_freedman_lane():
    rng = np.random.default_rng(5)
    table = pd.DataFrame([{"participant_id": f"sub-{s}", "condition": c} for s in range(8) for c in "abc"])
    design = group_design(table, "anova")
    matrix = design.matrix.to_numpy()
    data = rng.standard_normal((24, 12)) + rng.normal(0, 2, (8, 12)).repeat(3, axis=0)
    data[table["condition"].to_numpy() == "c", :4] += 1.0
    resamples, _ = draw_resamples("permutation", 24, 60, design.blocks, seed=1)
    assert (design.blocks[resamples] == design.blocks).all()
    for name in ("effectOfCondition", "aMinusC"):
        contrast = design.contrasts[name]
        result = permutation_test(data, matrix, contrast, n_perm=60, blocks=design.blocks, resamples=resamples,
                                  n_jobs=1)
        assert result.scheme == "permutation" and result.stat_type == ("F" if name.startswith("effect") else "t")
        nuisance = matrix @ linalg.null_space(np.atleast_2d(contrast))
        fitted = nuisance @ np.linalg.pinv(nuisance) @ data
        brute = []
        for rows in resamples:  # Freedman-Lane: permute the reduced model's residuals, add its fit back
            shuffled = (data - fitted)[np.argsort(rows)] + fitted
            stat = compute_contrast(fit_ols(shuffled, matrix), contrast).stat
            brute.append(np.abs(stat).max())
        np.testing.assert_allclose(result.null_max, brute, rtol=1e-4)


def test_paired_permutation_within_participants_is_sign_flipping():
    rng = np.random.default_rng(6)
    table = pd.DataFrame([{"participant_id": f"sub-{s}", "condition": c} for s in range(12) for c in ("post", "pre")])
    data = rng.standard_normal((24, 20)) + rng.normal(0, 3, (12, 20)).repeat(2, axis=0)
    design = group_design(table, "paired")
    swaps = rng.integers(0, 2, (40, 12))
    rows = np.arange(24).reshape(12, 2)
    resamples = np.where(swaps[:, :, None], rows[None, :, ::-1], rows[None]).reshape(40, 24)
    paired = permutation_test(data, design.matrix.to_numpy(), design.contrasts["postMinusPre"], n_perm=40,
                              blocks=design.blocks, resamples=resamples, n_jobs=1)
    differences = data[0::2] - data[1::2]
    flipped = permutation_test(differences, np.ones((12, 1)), np.array([1.0]), n_perm=40,
                               resamples=1 - 2 * swaps, n_jobs=1)
    np.testing.assert_allclose(paired.stat, flipped.stat, rtol=1e-9)
    np.testing.assert_allclose(paired.null_max, flipped.null_max, rtol=1e-5)


def test_f_test_of_the_intercept_flips_signs_and_untestable_effects_are_refused():
    rng = np.random.default_rng(10)
    data = rng.standard_normal((12, 30)) + 0.3
    t_test = permutation_test(data, np.ones((12, 1)), np.array([1.0]), n_perm=200, random_state=1, n_jobs=1)
    f_test = permutation_test(data, np.ones((12, 1)), np.array([[1.0]]), n_perm=200, random_state=1, n_jobs=1)
    assert f_test.scheme == "signflip" and f_test.stat_type == "F"
    np.testing.assert_allclose(f_test.stat, t_test.stat**2, rtol=1e-9)
    np.testing.assert_allclose(f_test.null_max, t_test.null_max**2, rtol=1e-4)
    age = np.repeat(rng.normal(40, 10, 6), 2)  # constant within each participant's two maps
    with pytest.raises(UsageError, match="constant within participants"):
        permutation_test(data, np.column_stack([np.ones(12), age - age.mean()]), np.array([0.0, 1.0]),
                         blocks=np.repeat(np.arange(6), 2), n_perm=100)


def test_deterministic_with_a_seed_and_independent_of_jobs(volumes):
    data, mask = volumes
    design, contrast = np.ones((20, 1)), np.array([1.0])
    first = permutation_test(data, design, contrast, n_perm=300, random_state=42, n_jobs=1)
    threads = permutation_test(data, design, contrast, n_perm=300, random_state=42, n_jobs=2)
    other = permutation_test(data, design, contrast, n_perm=300, random_state=43, n_jobs=1)
    np.testing.assert_allclose(threads.null_max, first.null_max, rtol=1e-6)
    np.testing.assert_array_equal(threads.p_fwe, first.p_fwe)
    assert not np.allclose(other.null_max, first.null_max) and first.random_state == 42
    spatial = dict(n_perm=40, alpha=0.5, random_state=42, mask=mask, height_threshold=0.01, with_tfce=True)
    one = permutation_test(data, design, contrast, n_jobs=1, **spatial)
    processes = permutation_test(data, design, contrast, n_jobs=2, **spatial)
    for key in ("null_max", "null_max_size", "null_max_mass", "null_max_tfce"):
        np.testing.assert_allclose(getattr(processes, key), getattr(one, key), rtol=1e-6)


def test_null_data_gives_family_wise_errors_at_about_alpha():
    rng = np.random.default_rng(8)
    rejections = [(permutation_test(rng.standard_normal((10, 25)), np.ones((10, 1)), np.array([1.0]), n_perm=99,
                                    random_state=seed, n_jobs=1).p_fwe <= 0.05).any() for seed in range(300)]
    rate = np.mean(rejections)
    assert 0.015 <= rate <= 0.095, rate  # 0.05 +- 3.5 binomial standard errors


def test_parcels_and_edges_use_max_t_only_and_bad_input_is_named():
    rng = np.random.default_rng(9)
    parcels = rng.standard_normal((16, 100))
    parcels[:, :5] += 1.5
    parcels[:, 50] = np.nan
    result = permutation_test(parcels, np.ones((16, 1)), np.array([1.0]), n_perm=500, random_state=0, n_jobs=1)
    assert (result.p_fwe[:5] < 0.05).all() and np.isnan(result.p_fwe[50]) and np.isnan(result.stat[50])
    assert result.clusters is None and result.tfce is None
    reference = permutation_test(np.delete(parcels, 50, axis=1), np.ones((16, 1)), np.array([1.0]), n_perm=500,
                                 random_state=0, n_jobs=1)
    np.testing.assert_array_equal(np.delete(result.p_fwe, 50), reference.p_fwe)
    with pytest.raises(UsageError, match=r"--correction cluster and tfce need voxel maps"):
        permutation_test(parcels, np.ones((16, 1)), np.array([1.0]), with_tfce=True)
    with pytest.raises(UsageError, match=r"--n-perm 10 is too small for --alpha 0.05.*use at least 19"):
        permutation_test(parcels, np.ones((16, 1)), np.array([1.0]), n_perm=10)
    # two-sided: the identity and its mirror image both give back the data, so the smallest p is 2/2**n
    with pytest.raises(NoDataError, match=r"only 16 sign flips exist and the smallest FWE p value is 0.125.*"
                                          r"at least 6 participants"):
        permutation_test(parcels[:4], np.ones((4, 1)), np.array([1.0]), n_perm=1000)
    with pytest.raises(NoDataError, match=r"only 16 sign flips exist and the smallest FWE p value is 0.0625.*"
                                          r"at least 5 participants"):
        permutation_test(parcels[:4], np.ones((4, 1)), np.array([1.0]), n_perm=1000, two_sided=False)


@pytest.mark.parametrize("connectivity", [6, 18, 26])
@pytest.mark.parametrize("two_sided", [True, False])
def test_tfce_and_clusters_match_nilearn_and_ndimage(volumes, connectivity, two_sided):
    from nilearn.mass_univariate._utils import calculate_tfce

    data, mask = volumes
    stat = compute_contrast(fit_ols(data, np.ones((20, 1))), np.array([1.0])).stat
    graph = voxel_graph(mask, connectivity)
    structure = ndimage.generate_binary_structure(3, {6: 1, 18: 2, 26: 3}[connectivity])
    for dh in ("auto", 0.05):
        expected = calculate_tfce(_unmask(stat, mask)[..., None], structure, dh=dh, two_sided_test=two_sided)
        np.testing.assert_allclose(tfce(stat, graph, two_sided=two_sided, dh=dh), expected[mask, 0], rtol=1e-12)
    clusters = cluster_maps(stat, graph, 2.5, two_sided)
    labels, _ = ndimage.label(_unmask(stat, mask) > 2.5, structure)
    sizes = np.bincount(labels.ravel())[labels[mask]] * (labels[mask] > 0)
    positive = stat > 0
    np.testing.assert_array_equal(clusters.size[positive], sizes[positive])
    assert clusters.label.max() == labels.max() + (ndimage.label(_unmask(-stat, mask) > 2.5, structure)[1]
                                                   if two_sided else 0)
    assert clusters.size[clusters.label == 1].min() == clusters.size.max()
