"""OLS t/F maps against scipy.stats, statsmodels and nilearn's SecondLevelModel, on data with planted effects."""

from __future__ import annotations

import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.stats.anova import AnovaRM

from bidsapp.errors import NoDataError, UsageError
from bidsapp.stats.design import group_design
from bidsapp.stats.parametric import compute_contrast, fit_ols

N_FEATURES = 40
EFFECT = slice(0, 10)  # features with a planted effect


def _participants(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"participant_id": [f"sub-{i:02d}" for i in range(1, n + 1)],
                         "group": np.where(np.arange(n) % 2, "patient", "control"),
                         "site": rng.choice(["a", "b", "c"], n),
                         "age": rng.uniform(20, 60, n).round(1)})


def _long(n: int, conditions: list[str], seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Several maps per participant: participant effect + condition effect (planted) + noise."""
    rng = np.random.default_rng(seed)
    rows = [{"participant_id": f"sub-{s:02d}", "condition": c} for s in range(1, n + 1) for c in conditions]
    table = pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)  # any row order
    subject_effect = rng.normal(0, 2, (n + 1, N_FEATURES))
    data = rng.standard_normal((len(table), N_FEATURES))
    for i, row in table.iterrows():
        data[i] += subject_effect[int(row["participant_id"][4:])]
        data[i, EFFECT] += 0.8 * conditions.index(row["condition"])
    return table, data


def test_one_sample_matches_ttest_1samp():
    rng = np.random.default_rng(0)
    data = rng.standard_normal((15, N_FEATURES))
    data[:, EFFECT] += 1.5
    design = group_design(_participants(15, 0), "onesample")
    fit = fit_ols(data, design.matrix.to_numpy())
    for alternative in ("two-sided", "greater", "less"):
        result = compute_contrast(fit, design.contrasts["mean"], alternative=alternative)
        expected = stats.ttest_1samp(data, 0.0, alternative=alternative)
        np.testing.assert_allclose(result.stat, expected.statistic, rtol=1e-10)
        np.testing.assert_allclose(result.p, expected.pvalue, rtol=1e-8)
    assert result.df == (1, 14)
    np.testing.assert_allclose(result.effect, data.mean(axis=0), rtol=1e-10)
    np.testing.assert_allclose(result.z, stats.norm.isf(stats.t.sf(result.stat, 14)), rtol=1e-8, atol=1e-12)
    assert (compute_contrast(fit, design.contrasts["mean"]).p[EFFECT] < 1e-3).all()


def test_two_sample_with_and_without_covariates():
    participants = _participants(24, 1)
    rng = np.random.default_rng(1)
    data = rng.standard_normal((24, N_FEATURES)) + 0.05 * participants["age"].to_numpy()[:, None]
    data[(participants["group"] == "patient").to_numpy(), EFFECT] += 1.5
    design = group_design(participants, "twosample", group_column="group")
    assert list(design.contrasts) == ["controlMinusPatient"]
    result = compute_contrast(fit_ols(data, design.matrix.to_numpy()), design.contrasts["controlMinusPatient"])
    control, patient = (data[(participants["group"] == g).to_numpy()] for g in ("control", "patient"))
    expected = stats.ttest_ind(control, patient)
    np.testing.assert_allclose(result.stat, expected.statistic, rtol=1e-10)
    np.testing.assert_allclose(result.p, expected.pvalue, rtol=1e-8)

    design = group_design(participants, "twosample", group_column="group", covariates=["age", "site"])
    assert list(design.matrix.columns) == ["group[control]", "group[patient]", "age", "site[b]", "site[c]"]
    assert abs(design.matrix["age"].mean()) < 1e-12
    fit = fit_ols(data, design.matrix.to_numpy())
    t_result = compute_contrast(fit, design.contrasts["controlMinusPatient"])
    f_result = compute_contrast(fit, np.eye(5)[3:])  # the site effect, an F test
    for feature in (0, 15):
        frame = participants.assign(y=data[:, feature])
        model = smf.ols("y ~ C(group, Treatment('patient')) + age + C(site)", frame).fit()
        name = "C(group, Treatment('patient'))[T.control]"
        assert t_result.stat[feature] == pytest.approx(model.tvalues[name], rel=1e-9)
        assert t_result.p[feature] == pytest.approx(model.pvalues[name], rel=1e-7)
        f_test = model.f_test("C(site)[T.b] = 0, C(site)[T.c] = 0")
        assert f_result.stat[feature] == pytest.approx(float(np.squeeze(f_test.fvalue)), rel=1e-9)
        assert f_result.p[feature] == pytest.approx(float(f_test.pvalue), rel=1e-7)
        assert f_result.df == (int(f_test.df_num), int(f_test.df_denom))


def test_paired_design_matches_ttest_rel():
    table, data = _long(12, ["pre", "post"], seed=2)
    design = group_design(table, "paired")
    assert design.within_participant and list(design.contrasts) == ["postMinusPre"]
    assert design.matrix.shape == (24, 2 + 12)
    result = compute_contrast(fit_ols(data, design.matrix.to_numpy()), design.contrasts["postMinusPre"])
    order = table.sort_values(["participant_id", "condition"]).index
    post, pre = data[order[0::2]], data[order[1::2]]
    expected = stats.ttest_rel(post, pre)
    np.testing.assert_allclose(result.stat, expected.statistic, rtol=1e-9)
    np.testing.assert_allclose(result.p, expected.pvalue, rtol=1e-7)
    assert result.df == (1, 11)
    assert set(np.unique(design.blocks)) == set(range(12))


def test_one_way_anova_matches_f_oneway():
    participants = _participants(30, 3)
    participants["arm"] = np.repeat(["x", "y", "z"], 10)
    rng = np.random.default_rng(3)
    data = rng.standard_normal((30, N_FEATURES))
    data[20:, EFFECT] += 1.2
    design = group_design(participants, "anova", group_column="arm")
    assert list(design.contrasts) == ["effectOfArm", "xMinusY", "xMinusZ", "yMinusZ"]
    result = compute_contrast(fit_ols(data, design.matrix.to_numpy()), design.contrasts["effectOfArm"])
    expected = stats.f_oneway(data[:10], data[10:20], data[20:])
    np.testing.assert_allclose(result.stat, expected.statistic, rtol=1e-9)
    np.testing.assert_allclose(result.p, expected.pvalue, rtol=1e-7)
    assert result.df == (2, 27) and result.stat_type == "F"
    np.testing.assert_allclose(result.z, stats.norm.isf(expected.pvalue), rtol=1e-6, atol=1e-9)


def test_repeated_measures_anova_matches_anovarm():
    conditions = ["famous", "unfamiliar", "scrambled"]
    table, data = _long(10, conditions, seed=4)
    design = group_design(table, "anova")
    assert design.within_participant and design.matrix.shape == (30, 3 + 10)
    fit = fit_ols(data, design.matrix.to_numpy())
    result = compute_contrast(fit, design.contrasts["effectOfCondition"])
    assert result.df == (2, 18)
    for feature in (0, 5, 20):
        anova = AnovaRM(table.assign(y=data[:, feature]), "y", "participant_id", within=["condition"]).fit()
        row = anova.anova_table.loc["condition"]
        assert result.stat[feature] == pytest.approx(row["F Value"], rel=1e-9)
        assert result.p[feature] == pytest.approx(row["Pr > F"], rel=1e-7)
    pairwise = compute_contrast(fit, design.contrasts["famousMinusScrambled"])
    assert (pairwise.stat[EFFECT] < 0).all() and pairwise.df == (1, 18)  # scrambled has the largest effect


def _images(data: np.ndarray, shape=(4, 5, 2)) -> list[nib.Nifti1Image]:
    return [nib.Nifti1Image(row.reshape(shape), np.eye(4)) for row in data]


@pytest.mark.parametrize("kind", ["onesample", "twosample-covariates", "anova"])
def test_maps_match_second_level_model(kind):
    from nilearn.glm.second_level import SecondLevelModel

    participants = _participants(18, 5)
    participants["arm"] = np.repeat(["x", "y", "z"], 6)
    rng = np.random.default_rng(5)
    data = rng.standard_normal((18, N_FEATURES)) * 2 + 1
    data[:6, EFFECT] += 2.0
    if kind == "onesample":
        design = group_design(participants, "onesample", covariates=["age"])
        name = "mean"
    elif kind == "twosample-covariates":
        design = group_design(participants, "twosample", group_column="group", covariates=["age", "site"])
        name = "controlMinusPatient"
    else:
        design = group_design(participants, "anova", group_column="arm")
        name = "effectOfArm"
    contrast = design.contrasts[name]
    ours = compute_contrast(fit_ols(data, design.matrix.to_numpy()), contrast, alternative="greater")
    mask = nib.Nifti1Image(np.ones((4, 5, 2), np.uint8), np.eye(4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = SecondLevelModel(mask_img=mask).fit(_images(data), design_matrix=design.matrix.reset_index(drop=True))
        maps = model.compute_contrast(contrast, output_type="all")
    expected = {key: img.get_fdata().ravel() for key, img in maps.items()}
    np.testing.assert_allclose(ours.stat, expected["stat"], rtol=1e-8)
    np.testing.assert_allclose(ours.z, expected["z_score"], rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(ours.p, expected["p_value"], rtol=1e-6, atol=1e-14)
    if ours.stat_type == "t":
        np.testing.assert_allclose(ours.effect, expected["effect_size"], rtol=1e-8)
        np.testing.assert_allclose(ours.variance, expected["effect_variance"], rtol=1e-8)


def test_non_finite_features_give_nan_not_zero():
    rng = np.random.default_rng(6)
    data = rng.standard_normal((10, 5)) + 1
    data[3, 1] = np.nan
    data[:, 2] = np.inf
    fit = fit_ols(data, np.ones((10, 1)))
    result = compute_contrast(fit, np.array([1.0]))
    for values in (result.stat, result.z, result.p, result.effect):
        assert np.isnan(values[[1, 2]]).all() and np.isfinite(values[[0, 3, 4]]).all()
    np.testing.assert_allclose(result.stat[[0, 3, 4]], stats.ttest_1samp(data[:, [0, 3, 4]], 0).statistic)


def test_bad_contrasts_and_too_few_maps():
    table, data = _long(4, ["a", "b"], seed=7)
    design = group_design(table, "paired")
    fit = fit_ols(data, design.matrix.to_numpy())
    single_condition = np.zeros(design.matrix.shape[1])
    single_condition[0] = 1.0
    with pytest.raises(UsageError, match="not estimable"):
        compute_contrast(fit, single_condition, name="aOnly")
    with pytest.raises(UsageError, match="3 weights for 6"):
        compute_contrast(fit, np.ones(3))
    with pytest.raises(NoDataError, match="at least 3 maps"):
        fit_ols(np.ones((2, 3)), np.array([[1.0, 0.0], [1.0, 1.0]]))
