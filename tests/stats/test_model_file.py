"""Cell-means model files: seed 004's within design and a mixed design against statsmodels, one-sided tests
against scipy, within-participant permutations against a plain numpy Freedman-Lane, and the bad-input lines.

Data are planted: condition effects (faces > scrambled, famous > unfamiliar, a group x condition interaction),
participant offsets and Gaussian noise, so every contrast has a known direction.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.stats.anova import anova_lm
from statsmodels.stats.multitest import multipletests

from bidsapp.config import GroupAnalysis
from bidsapp.errors import NoDataError, UsageError
from bidsapp.group.inference import infer
from bidsapp.stats.correction import height_threshold
from bidsapp.stats.model_file import cell_model, conditions_design, model_design
from bidsapp.stats.parametric import compute_contrast, fit_ols
from bidsapp.stats.permutation import permutation_test

SEED004 = ["IniFF", "ImmFF", "DelFF", "IniUF", "ImmUF", "DelUF", "IniSF", "ImmSF", "DelSF"]
CONTRASTS = {
    "FacesScrambled": "(IniFF + ImmFF + DelFF + IniUF + ImmUF + DelUF)/6 - (IniSF + ImmSF + DelSF)/3",
    "StimulusXRepetition": ["(IniFF + IniUF)/2 - IniSF - ((ImmFF + ImmUF)/2 - ImmSF)",
                            "IniFF - IniUF - (ImmFF - ImmUF)"],
    "FamousUnfamiliar": {"expression": "(IniFF + ImmFF + DelFF)/3 - (IniUF + ImmUF + DelUF)/3", "test": "greater"},
}


def _model(**entries) -> dict:
    return {"path": "model.yml", **entries}


def _rows(n_subjects: int, conditions: list[str], groups: list[str] | None = None) -> pd.DataFrame:
    """Participant x condition rows (each participant's rows together), with participants.tsv columns."""
    return pd.DataFrame([{"participant_id": f"sub-{s:02d}", "condition": c, "age": 20.0 + 3 * s,
                          "diagnosis": groups[s % len(groups)] if groups else "control"}
                         for s in range(1, n_subjects + 1) for c in conditions])


def _seed004_data(rows: pd.DataFrame, n_features: int = 40, seed: int = 0) -> np.ndarray:
    """Faces > scrambled by 1.0 and famous > unfamiliar by 0.6 in every feature, plus offsets and noise."""
    rng = np.random.default_rng(seed)
    effect = {c: (1.0 if not c.endswith("SF") else 0.0) + (0.6 if c.endswith("FF") else 0.0) for c in SEED004}
    offsets = {s: rng.normal(0, 2, n_features) for s in rows["participant_id"].unique()}
    return np.stack([effect[r.condition] + offsets[r.participant_id] + rng.normal(0, 1, n_features)
                     for r in rows.itertuples()])


def test_seed004_design_and_contrasts_match_the_tutorial_vectors():
    rows = _rows(16, SEED004)
    design = conditions_design(rows, cell_model(_model(conditions=SEED004, contrasts=CONTRASTS)))
    assert list(design.matrix.columns[:9]) == SEED004 and design.matrix.shape == (144, 25)
    assert design.within_participant and list(design.blocks[:10]) == [0] * 9 + [1]
    pad = (0, 16)
    np.testing.assert_allclose(design.contrasts["FacesScrambled"], np.pad([1 / 6] * 6 + [-1 / 3] * 3, pad))
    np.testing.assert_allclose(design.contrasts["FamousUnfamiliar"], np.pad([1 / 3] * 3 + [-1 / 3] * 3 + [0] * 3, pad))
    np.testing.assert_allclose(design.contrasts["StimulusXRepetition"],  # seed 004's np.kron rows
                               np.pad(np.array([np.kron([1 / 2, 1 / 2, -1], [1, -1, 0]), np.kron([1, -1, 0], [1, -1, 0])]),
                                      [(0, 0), pad]))
    assert dict(design.alternatives) == {"FamousUnfamiliar": "greater"}


def test_seed004_contrasts_match_statsmodels_ols_and_one_sided_p_matches_scipy():
    rows = _rows(12, SEED004)
    design = conditions_design(rows, cell_model(_model(conditions=SEED004, contrasts=CONTRASTS)))
    data = _seed004_data(rows)
    matrix = design.matrix.to_numpy(float)
    fit = fit_ols(data, matrix)
    assert fit.dof == 108 - (9 + 12 - 1)  # from the rank, as statsmodels
    results = {name: compute_contrast(fit, c, alternative=design.alternatives.get(name, "two-sided"), name=name)
               for name, c in design.contrasts.items()}
    for feature in (0, 17, 39):
        with pytest.warns(Warning, match="rank-deficient"):  # one column per participant, as in seed 004
            ols = sm.OLS(data[:, feature], matrix).fit()
        assert ols.df_resid == fit.dof
        for name in ("FacesScrambled", "FamousUnfamiliar"):
            test = ols.t_test(design.contrasts[name])
            assert results[name].stat[feature] == pytest.approx(float(test.tvalue.item()), rel=1e-8)
            assert results[name].df == (1, int(test.df_denom))
        f_test = ols.f_test(design.contrasts["StimulusXRepetition"])
        result = results["StimulusXRepetition"]
        assert result.stat[feature] == pytest.approx(float(f_test.fvalue), rel=1e-8)
        assert result.p[feature] == pytest.approx(float(f_test.pvalue), rel=1e-8)
        assert result.df == (int(f_test.df_num), int(f_test.df_denom)) == (2, 88)
        two_sided = float(ols.t_test(design.contrasts["FacesScrambled"]).pvalue)
        assert results["FacesScrambled"].p[feature] == pytest.approx(two_sided, rel=1e-8)
    one_sided = results["FamousUnfamiliar"]
    assert one_sided.alternative == "greater"
    np.testing.assert_allclose(one_sided.p, stats.t.sf(one_sided.stat, fit.dof), rtol=1e-10)
    assert (one_sided.stat > 0).all() and (results["FacesScrambled"].stat > 0).all()  # the planted directions


def test_one_sided_corrections_use_one_sided_p():
    rows = _rows(12, SEED004)
    model = _model(conditions=SEED004, contrasts={
        "up": {"expression": "IniFF - IniSF", "test": "greater"},
        "down": {"expression": "IniFF - IniSF", "test": "less"}})
    design = conditions_design(rows, cell_model(model))
    data = _seed004_data(rows, n_features=60, seed=3)
    settings = GroupAnalysis(corrections=("fpr", "fdr", "bonferroni"), alpha=0.05)
    inference = {item.name: item for item in infer(data, design, settings)}
    up, down = inference["up"], inference["down"]
    t = up.result.stat
    np.testing.assert_allclose(up.result.p, stats.t.sf(t, up.result.df[1]), rtol=1e-10)
    np.testing.assert_allclose(down.result.p, stats.t.cdf(t, up.result.df[1]), rtol=1e-10)
    for correction in up.corrections:
        oracle = {"fpr": up.result.p <= 0.05,
                  "fdr": multipletests(up.result.p, 0.05, "fdr_bh")[0],
                  "bonferroni": multipletests(up.result.p, 0.05, "bonferroni")[0]}[correction.name]
        np.testing.assert_array_equal(correction.survives, oracle)
    assert {c.name: int(c.survives.sum()) for c in up.corrections}["fpr"] > 0
    assert all(not c.survives.any() for c in down.corrections)  # the planted effect is positive
    threshold = height_threshold(up.result.p, method="fpr", alpha=0.001, two_sided=False)
    assert threshold.p == 0.001 and threshold.z == pytest.approx(stats.norm.isf(0.001))


def _freedman_lane_blocks(data, design, contrast, blocks, n_perm, rng, sign=1.0):
    """Plain numpy Freedman-Lane with permutations within blocks: max one-sided t, p = (1 + #)/(1 + n)."""
    contrast = sign * contrast
    pinv = np.linalg.pinv(design)
    dof = design.shape[0] - np.linalg.matrix_rank(design)
    nuisance = design @ np.linalg.svd(contrast[None, :])[2][1:].T  # design @ null space of the contrast
    fitted = nuisance @ np.linalg.pinv(nuisance) @ data
    residuals = data - fitted

    def t_stat(y):
        beta = pinv @ y
        resid = y - design @ beta
        variance = (resid**2).sum(axis=0) / dof * (contrast @ np.linalg.pinv(design.T @ design) @ contrast)
        return contrast @ beta / np.sqrt(variance)

    observed = t_stat(data)
    exceed = np.zeros(data.shape[1])
    for _ in range(n_perm):
        order = np.arange(len(blocks))
        for block in np.unique(blocks):
            where = np.flatnonzero(blocks == block)
            order[where] = rng.permutation(where)
        exceed += t_stat(fitted + residuals[order]).max() >= observed
    return observed * sign, (1 + exceed) / (1 + n_perm)


@pytest.mark.parametrize("alternative", ["greater", "less"])
def test_within_participant_permutation_matches_numpy_freedman_lane_with_blocks(alternative):
    conditions = ["A", "B", "C"]
    rows = _rows(10, conditions)
    sign = 1.0 if alternative == "greater" else -1.0
    rng = np.random.default_rng(11)
    data = rng.normal(0, 1, (30, 25)) + np.repeat(rng.normal(0, 2, (10, 25)), 3, axis=0)
    data[(rows["condition"] == "A").to_numpy(), :5] += sign * 2.5  # planted in the tested direction, 5 features
    model = _model(conditions=conditions, contrasts={"aOverB": {"expression": "A - B", "test": alternative}})
    design = conditions_design(rows, cell_model(model))
    matrix, contrast = design.matrix.to_numpy(float), design.contrasts["aOverB"]
    n_perm = 2000
    result = permutation_test(data, matrix, contrast, n_perm=n_perm, alternative=alternative, blocks=design.blocks,
                              random_state=5)
    assert result.scheme == "permutation" and not result.exhaustive and result.alternative == alternative
    observed, oracle = _freedman_lane_blocks(data, matrix, contrast, design.blocks, n_perm,
                                             np.random.default_rng(99), sign)
    np.testing.assert_allclose(result.stat, observed, rtol=1e-8)
    bound = 4 * np.sqrt(2 * oracle * (1 - oracle) / n_perm) + 2 / n_perm  # two independent Monte Carlo estimates
    assert (np.abs(result.p_fwe - oracle) <= bound).all()
    assert np.median(result.p_fwe[:5]) < 0.01 and np.median(result.p_fwe[5:]) > 0.3  # found in its direction


def test_mixed_design_matches_statsmodels_anova_lm():
    conditions = ["A", "B", "C"]
    rows = _rows(12, conditions, groups=["control", "patient"])
    rng = np.random.default_rng(4)
    y = rng.normal(0, 1, len(rows)) + np.repeat(rng.normal(0, 1.5, 12), 3)
    y[((rows["diagnosis"] == "patient") & (rows["condition"] == "B")).to_numpy()] += 1.2  # the interaction
    model = _model(conditions=conditions, groups="diagnosis", contrasts={
        "DiagnosisXCondition": ["control.A - control.B - (patient.A - patient.B)",
                                "control.B - control.C - (patient.B - patient.C)"],
        "Condition": ["(control.A + patient.A)/2 - (control.B + patient.B)/2",
                      "(control.B + patient.B)/2 - (control.C + patient.C)/2"]})
    design = conditions_design(rows, cell_model(model))
    assert list(design.matrix.columns[:6]) == [f"{g}.{c}" for g in ("control", "patient") for c in conditions]
    fit = fit_ols(y[:, None], design.matrix.to_numpy(float))
    # participants nested in diagnosis, coded full rank (a rank-deficient exog upsets anova_lm's sequential sums)
    frame = rows.assign(y=y, sid=rows.groupby("diagnosis")["participant_id"].rank(method="dense"))
    table = anova_lm(smf.ols("y ~ C(diagnosis) * C(condition) + C(diagnosis):C(sid)", frame).fit(), typ=2)
    for name, term in (("DiagnosisXCondition", "C(diagnosis):C(condition)"), ("Condition", "C(condition)")):
        result = compute_contrast(fit, design.contrasts[name], name=name)
        assert result.stat[0] == pytest.approx(table.loc[term, "F"], rel=1e-8)
        assert result.p[0] == pytest.approx(table.loc[term, "PR(>F)"], rel=1e-8)
        assert result.df == (int(table.loc[term, "df"]), int(table.loc["Residual", "df"]))


def test_between_groups_model_with_centred_covariate_matches_statsmodels():
    table = _rows(10, ["x"], groups=["control", "patient"]).drop(columns="condition")
    model = _model(groups="diagnosis", covariates=["age"], contrasts={"patientOverControl": {
        "expression": "patient - control", "test": "greater"}})
    design = model_design(table, model)
    assert list(design.matrix.columns) == ["control", "patient", "age"] and not design.within_participant
    assert design.matrix["age"].mean() == pytest.approx(0)
    y = np.random.default_rng(2).normal(0, 1, 10) + (table["diagnosis"] == "patient") * 1.5
    result = compute_contrast(fit_ols(y.to_numpy()[:, None], design.matrix.to_numpy(float)),
                              design.contrasts["patientOverControl"], alternative="greater")
    frame = table.assign(y=y, age=table["age"] - table["age"].mean())
    ols = smf.ols("y ~ C(diagnosis) + age", frame).fit()
    assert result.stat[0] == pytest.approx(ols.tvalues["C(diagnosis)[T.patient]"], rel=1e-8)
    assert result.p[0] == pytest.approx(ols.pvalues["C(diagnosis)[T.patient]"] / 2, rel=1e-8)


def test_bad_model_files_name_the_entry_and_the_known_ones():
    rows = _rows(6, SEED004)
    with pytest.raises(UsageError, match=r"contrast bad names 'IniXX', not a cell of this design \(cells: IniFF, "):
        conditions_design(rows, cell_model(_model(conditions=SEED004, contrasts={"bad": "IniXX - IniFF"})))
    with pytest.raises(UsageError, match=r"weights sum to 1, not 0; a within design has one column per participant"):
        conditions_design(rows, cell_model(_model(conditions=SEED004, contrasts={"mean": "IniFF"})))
    with pytest.raises(UsageError, match=r"weights sum to -1 over the control cells, not 0.*within each group.*one row per participant"):
        mixed = _rows(6, ["A", "B"], groups=["control", "patient"])
        conditions_design(mixed, cell_model(_model(conditions=["A", "B"], groups="diagnosis",
                                                   contrasts={"g": "patient.A - control.B + patient.B"})))
    with pytest.raises(UsageError, match=r"unknown key 'contrast' \(known: conditions, groups, covariates, contrasts"):
        cell_model(_model(conditions=SEED004, contrast={"a": "IniFF - ImmFF"}))
    with pytest.raises(UsageError, match="test 'two'; use two-sided, greater, less"):
        cell_model(_model(conditions=SEED004, contrasts={"a": {"expression": "IniFF - ImmFF", "test": "two"}}))
    with pytest.raises(UsageError, match="mix sessions"):
        cell_model(_model(conditions=["ses-1", "IniFF"], contrasts={"a": "IniFF"}))
    with pytest.raises(UsageError, match="covariates age: .* per-participant columns of a within design absorb it"):
        conditions_design(rows, cell_model(_model(conditions=SEED004, covariates=["age"],
                                                  contrasts={"a": "IniFF - ImmFF"})))
    with pytest.raises(NoDataError, match="groups column 'diagnosis' has one level \\(control\\)"):
        conditions_design(rows, cell_model(_model(conditions=SEED004, groups="diagnosis",
                                                  contrasts={"a": "control.IniFF - control.ImmFF"})))
