"""Group level on the demo's HCP data: designs and corrections against scipy, planted effects found."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import error_lines
from scipy import stats

from bidsapp.cli import main
from bidsapp.group.inputs import find_group_inputs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hcp_participant(demo, tmp_path_factory):
    """Participant level on the demo's BIDS-style HCP data (motor with single-condition contrasts, rest)."""
    out = tmp_path_factory.mktemp("group") / "out"
    assert main([str(demo.hcp_bids_dir), str(out), "participant", "--task", "motor", "rest", "--contrast",
                 "lf=lf", "rf=rf", "lfMinusRf=lf - rf", "-w", str(out.parent / "work"), "--nprocs", "2"]) == 0
    return demo.hcp_bids_dir, out


def participant_values(out, pattern, column):
    tables = {path.name.split("_")[0]: pd.read_csv(path, sep="\t") for path in sorted(out.glob(f"sub-*/func/{pattern}"))}
    return pd.DataFrame({sub: table.set_index("name")[column] for sub, table in tables.items()})


def group(bids_dir, out, *options):
    return main([str(bids_dir), str(out), "group", "--task", "motor", "rest", "-w", str(out.parent / "work"), *options])


def test_inputs_prefer_combined_runs(hcp_participant):
    bids_dir, out = hcp_participant
    inputs = find_group_inputs(out, [path.name[4:] for path in out.glob("sub-*") if path.is_dir()])
    edges = [item for item in inputs if item.kind == "edges"]
    assert len(edges) == 1 and "run" not in edges[0].entities and "dir" not in edges[0].entities
    assert {item.entities.get("contrast") for item in inputs if item.kind == "parcels"} >= {"lf", "rf", "lfMinusRf"}


def test_onesample_matches_scipy_and_finds_contralateral_motor(hcp_participant):
    bids_dir, out = hcp_participant
    assert group(bids_dir, out, "--correction", "fdr", "bonferroni", "fwe", "--n-perm", "500") == 0
    table = pd.read_csv(out / "group" / "task-motor_space-fsLR_seg-Glasser_contrast-lfMinusRf_desc-mean_statmap.tsv",
                        sep="\t").set_index("name")
    effects = participant_values(out, "*_contrast-lfMinusRf_statmap.tsv", "effect")
    expected = stats.ttest_1samp(effects.to_numpy(), 0, axis=1)
    assert table["t"].to_numpy() == pytest.approx(expected.statistic, rel=1e-8)
    assert table["p"].to_numpy() == pytest.approx(expected.pvalue, rel=1e-6)
    motor = table[table["network"] == "Somatomotor"]
    right, left = motor[motor["hemisphere"] == "right"], motor[motor["hemisphere"] == "left"]
    assert (right["t"] > 0).all() and (left["t"] < 0).all()
    assert right["survives_fdr"].all() and left["survives_fwe"].all()
    null = table[~table["network"].isin(["Somatomotor"])]
    assert null["survives_bonferroni"].mean() < 0.05  # nothing found where nothing was planted


def test_twosample_default_network_group_difference(hcp_participant):
    bids_dir, out = hcp_participant
    assert group(bids_dir, out, "--group-test", "twosample", "--group-column", "group") == 0
    networks = pd.read_csv(next((out / "group").glob("task-rest_*_desc-networksControlMinusPatient_networks.tsv")),
                           sep="\t")
    default = networks[(networks["node_a"] == "Default") & (networks["node_b"] == "Default")].iloc[0]
    participants = pd.read_csv(bids_dir / "participants.tsv", sep="\t")
    values = {}
    for path in sorted(out.glob("sub-*/func/sub-*_task-rest_space-fsLR_seg-Glasser_*_desc-networks_relmat.tsv")):
        matrix = pd.read_csv(path, sep="\t", index_col=0)
        values[path.name.split("_")[0]] = matrix.loc["Default", "Default"]
    groups = participants.set_index("participant_id")["group"]
    control = [v for sub, v in values.items() if groups[sub] == "control"]
    patient = [v for sub, v in values.items() if groups[sub] == "patient"]
    expected = stats.ttest_ind(control, patient)
    assert default["t"] == pytest.approx(expected.statistic, rel=1e-8)
    assert default["t"] > 0 and default["survives_fdr"]


def test_paired_matches_ttest_rel(hcp_participant):
    bids_dir, out = hcp_participant
    assert group(bids_dir, out, "--group-test", "paired", "--correction", "fdr") == 0
    table = pd.read_csv(out / "group" / "task-motor_space-fsLR_seg-Glasser_desc-lfMinusRf_statmap.tsv", sep="\t")
    lf = participant_values(out, "*_contrast-lf_statmap.tsv", "effect")
    rf = participant_values(out, "*_contrast-rf_statmap.tsv", "effect")
    expected = stats.ttest_rel(lf.to_numpy(), rf.to_numpy(), axis=1)
    assert table["t"].to_numpy() == pytest.approx(expected.statistic, rel=1e-8)


def test_repeated_measures_anova_matches_f_test(hcp_participant):
    bids_dir, out = hcp_participant
    assert group(bids_dir, out, "--group-test", "anova", "--correction", "fdr") == 0
    table = pd.read_csv(out / "group" / "task-motor_space-fsLR_seg-Glasser_desc-effectOfCondition_statmap.tsv",
                        sep="\t")
    lf = participant_values(out, "*_contrast-lf_statmap.tsv", "effect").to_numpy()
    rf = participant_values(out, "*_contrast-rf_statmap.tsv", "effect").to_numpy()
    # two conditions: the repeated-measures F is the square of the paired t
    assert table["F"].to_numpy() == pytest.approx(stats.ttest_rel(lf, rf, axis=1).statistic ** 2, rel=1e-8)


def test_missing_group_column_and_too_few_permutations(hcp_participant, capsys):
    bids_dir, out = hcp_participant
    assert group(bids_dir, out, "--group-test", "twosample", "--group-column", "diagnosis") == 2
    assert "diagnosis" in error_lines(capsys.readouterr().err)[0]
    assert group(bids_dir, out, "--correction", "fwe", "--n-perm", "5", "--alpha", "0.01") in (2, 18)
    assert "--n-perm" in " ".join(error_lines(capsys.readouterr().err))


def test_group_model_file_matches_statsmodels_ols(hcp_participant, tmp_path):
    import statsmodels.api as sm

    bids_dir, out = hcp_participant
    model = tmp_path / "model.yml"
    model.write_text("columns: [intercept, {group: patient}, age]\n"
                     "contrasts:\n  patientEffect: {groupPatient: 1}\n  ageEffect: {age: 1}\n"
                     "  anyEffect: [{groupPatient: 1}, {age: 1}]\n")
    assert group(bids_dir, out, "--group-model", str(model), "--correction", "fdr") == 0
    table = pd.read_csv(out / "group" / "task-motor_space-fsLR_seg-Glasser_contrast-lfMinusRf_desc-patientEffect_statmap.tsv",
                        sep="\t")
    effects = participant_values(out, "*_contrast-lfMinusRf_statmap.tsv", "effect")
    participants = pd.read_csv(bids_dir / "participants.tsv", sep="\t").set_index("participant_id").loc[effects.columns]
    design = sm.add_constant(pd.DataFrame({"patient": (participants["group"] == "patient").astype(float),
                                           "age": participants["age"] - participants["age"].mean()}))
    for parcel in (0, 100, 250):
        fit = sm.OLS(effects.iloc[parcel].to_numpy(), design.to_numpy()).fit()
        assert table["t"].iloc[parcel] == pytest.approx(fit.tvalues[1], rel=1e-8)
    f_table = pd.read_csv(next((out / "group").glob("task-motor_*_contrast-lfMinusRf_desc-anyEffect_statmap.tsv")),
                          sep="\t")
    fit = sm.OLS(effects.iloc[0].to_numpy(), design.to_numpy()).fit()
    assert f_table["F"].iloc[0] == pytest.approx(float(fit.f_test(np.eye(3)[1:]).fvalue), rel=1e-8)


def test_group_model_errors(hcp_participant, tmp_path, capsys):
    bids_dir, out = hcp_participant
    model = tmp_path / "model.yml"
    model.write_text("columns: [intercept, weight]\ncontrasts:\n  w: {weight: 1}\n")
    assert group(bids_dir, out, "--group-model", str(model)) == 2
    assert "no column 'weight'" in error_lines(capsys.readouterr().err)[0]
    model.write_text("columns: [intercept]\n")
    assert group(bids_dir, out, "--group-model", str(model)) == 2
    assert "'contrasts'" in error_lines(capsys.readouterr().err)[0]


@pytest.fixture(scope="module")
def fmriprep_single_conditions(fmriprep_templates, tmp_path_factory):
    """Participant level on small fMRIPrep data with single-condition contrasts (lf, rf) of the motor task."""
    bids = fmriprep_templates["21+"]
    out = tmp_path_factory.mktemp("fmriprep_group") / "out"
    assert main([str(bids), str(out), "participant", "--skip-bids-validation", "--task", "motor", "--contrast",
                 "lf=lf", "rf=rf", "-w", str(out.parent / "work"), "--nprocs", "2"]) == 0
    return bids, out


def test_paired_on_fmriprep_single_condition_maps_matches_ttest_rel(fmriprep_single_conditions):
    """The fMRIPrep pipeline's contrast sidecars name their conditions, so paired finds lf vs rf (voxels, parcels)."""
    import nibabel as nib

    bids, out = fmriprep_single_conditions
    assert main([str(bids), str(out), "group", "--skip-bids-validation", "--task", "motor", "--group-test", "paired",
                 "--correction", "fdr", "-w", str(out.parent / "work")]) == 0
    t_maps = sorted((out / "group").glob("task-motor_*_stat-t_desc-lfMinusRf_statmap.nii.gz"))
    assert len(t_maps) == 1 and "contrast-" not in t_maps[0].name
    effects = {condition: np.stack([nib.load(path).get_fdata() for path in sorted(
        out.glob(f"sub-*/func/*_contrast-{condition}_stat-effect_statmap.nii.gz"))]) for condition in ("lf", "rf")}
    assert len(effects["lf"]) == len(effects["rf"]) == 3
    both = np.concatenate([effects["lf"], effects["rf"]])
    mask = np.isfinite(both).all(axis=0) & (both != 0).all(axis=0)
    expected = stats.ttest_rel(effects["lf"][:, mask], effects["rf"][:, mask], axis=0)
    assert nib.load(t_maps[0]).get_fdata()[mask] == pytest.approx(expected.statistic, rel=1e-4, abs=1e-4)
    table = pd.read_csv(next((out / "group").glob("task-motor_*_seg-*_desc-lfMinusRf_statmap.tsv")), sep="\t")
    lf = participant_values(out, "*_seg-*_contrast-lf_statmap.tsv", "effect")
    rf = participant_values(out, "*_seg-*_contrast-rf_statmap.tsv", "effect")
    expected = stats.ttest_rel(lf.to_numpy(), rf.to_numpy(), axis=1)
    assert table["t"].to_numpy() == pytest.approx(expected.statistic, rel=1e-8, nan_ok=True)


def _flip_oracle_p(values: np.ndarray) -> np.ndarray:
    """Two-sided one-sample max-|t| FWE p over every sign flip of the rows (numpy, float64, identity included)."""
    n = values.shape[0]
    signs = 1 - 2 * ((np.arange(2**n)[:, None] >> np.arange(n)) & 1)
    means = signs @ values / n
    sd = np.sqrt(((values**2).sum(axis=0) - n * means**2) / (n - 1))  # flips leave the sum of squares unchanged
    null = np.abs(means / (sd / np.sqrt(n))).max(axis=1)
    observed = np.abs(stats.ttest_1samp(values, 0).statistic)
    return (null[None, :] >= observed[:, None] * (1 - 1e-9)).sum(axis=1) / 2**n


def test_fwe_p_values_are_exact_and_never_below_the_smallest_attainable(hcp_participant):
    """The HCP demo's impossible p_fwe = 0.0 (8 participants): now every one of the 256 sign flips, exactly."""
    import json

    bids_dir, out = hcp_participant
    assert group(bids_dir, out, "--correction", "fwe", "--n-perm", "1000") == 0
    name = "task-motor_space-fsLR_seg-Glasser_contrast-lfMinusRf_desc-mean_statmap"
    table = pd.read_csv(out / "group" / f"{name}.tsv", sep="\t").set_index("name")
    effects = participant_values(out, "*_contrast-lfMinusRf_statmap.tsv", "effect").loc[table.index]
    np.testing.assert_array_equal(table["p_fwe"].to_numpy(), _flip_oracle_p(effects.to_numpy().T))
    assert table["p_fwe"].min() == 2 / 256  # strong motor effects: only the identity and its mirror image reach them
    sidecar = json.loads((out / "group" / f"{name}.json").read_text())
    assert sidecar["PermutationPValue"] == ("#{resamples >= observed} / 256, the identity included; exact "
                                            "enumeration of the 256 sign flips")
    assert sidecar["PermutationResamples"] == 256 and sidecar["SmallestPValue"] == 2 / 256
    networks = pd.read_csv(next((out / "group").glob("task-rest_*_desc-networksMean_networks.tsv")), sep="\t")
    matrices = [pd.read_csv(path, sep="\t", index_col=0) for path in sorted(
        out.glob("sub-*/func/sub-*_task-rest_space-fsLR_seg-Glasser_*_desc-networks_relmat.tsv"))]
    upper = np.triu_indices(len(matrices[0]))
    assert list(networks["node_a"]) == list(matrices[0].index[upper[0]])
    values = np.array([matrix.to_numpy()[upper] for matrix in matrices])  # p_fwe was 0.0 here with 256 flips
    np.testing.assert_array_equal(networks["p_fwe"].to_numpy(), _flip_oracle_p(values))
    assert group(bids_dir, out, "--group-test", "paired", "--correction", "fwe", "--n-perm", "1000") == 0
    paired = pd.read_csv(out / "group" / "task-motor_space-fsLR_seg-Glasser_desc-lfMinusRf_statmap.tsv", sep="\t")
    lf = participant_values(out, "*_contrast-lf_statmap.tsv", "effect").loc[paired["name"]]
    rf = participant_values(out, "*_contrast-rf_statmap.tsv", "effect").loc[paired["name"]]
    np.testing.assert_array_equal(paired["p_fwe"].to_numpy(), _flip_oracle_p((lf - rf).to_numpy().T))
    checked = 0
    for path in (out / "group").glob("*.tsv"):  # every group table written so far, by every test of this module
        columns = [column for column in pd.read_csv(path, sep="\t", nrows=0).columns if column.startswith("p_")
                   and column not in ("p_fdr", "p_bonferroni")]
        if columns:
            smallest = json.loads(path.with_suffix(".json").read_text())["SmallestPValue"]
            assert smallest >= 1 / 1001 and (pd.read_csv(path, sep="\t")[columns].min() >= smallest).all(), path
            checked += 1
    assert checked >= 4
