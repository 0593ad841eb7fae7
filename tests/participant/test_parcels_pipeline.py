"""HCP-style parcellated data end to end (issue 4), checked against nilearn, numpy and the HCP course's code."""

from __future__ import annotations

import io
import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import error_lines
from nilearn.glm import expression_to_contrast_vector
from nilearn.glm.contrasts import compute_contrast
from nilearn.glm.first_level import make_first_level_design_matrix, mean_scaling, run_glm
from scipy.signal import detrend
from scipy.stats import zscore

from bidsapp.cli import main
from bidsapp.demo import truth
from bidsapp.inputs import convert
from bidsapp.outputs.relmat import read_relmat, relmat_text
from bidsapp.reports import parcels as reports_parcels
from bidsapp.steps.connectivity import connectivity_matrix, covariance, network_means, pooled_covariance
from bidsapp.steps.hcp_summaries import network_hemisphere_means, rank_parcels, selective_average

TR = 0.72
SUB = "100307"
SPACE = "space-fsLR_seg-Glasser"
MOTOR_RUNS = {"RL": 5, "LR": 6}  # bold<k> of tfMRI_MOTOR_RL / _LR
REST_RUNS = {"dir-LR_run-1": 1, "dir-RL_run-1": 2, "dir-LR_run-2": 3, "dir-RL_run-2": 4}


@pytest.fixture(scope="module")
def course_run(hcp_templates, tmp_path_factory):
    """The participant level on a copy of the small course-layout dataset (both subjects), run once."""
    root = tmp_path_factory.mktemp("parcels")
    hcp_dir = root / "hcp"
    shutil.copytree(hcp_templates["course"], hcp_dir)
    out = root / "out"
    code = main([str(hcp_dir), str(out), "participant", "--nprocs", "2", "--contrast", "lf=lf", "defaults"])
    assert code == 0
    return hcp_dir, out


def _func(out, name):
    return out / f"sub-{SUB}" / "func" / name


def _timeseries(hcp_dir, k, subject=SUB):
    return np.load(hcp_dir / "subjects" / subject / "timeseries" / f"bold{k}_Atlas_MSMAll_Glasser360Cortical.npy")


def _read(path):
    return pd.read_csv(path, sep="\t", na_values=["n/a"], keep_default_na=False)


# --- the HCP course's own functions (seed 000), as the independent oracle -------------------------
def load_evs(ev_dir, condition):
    ev_array = np.loadtxt(ev_dir / f"{condition}.txt", ndmin=2, unpack=True)
    return dict(zip(["onset", "duration", "amplitude"], ev_array, strict=True))


def course_condition_frames(run_evs, skip=0):
    frames_list = []
    for ev in run_evs:
        start = np.floor(ev["onset"] / TR).astype(int)
        duration = np.ceil(ev["duration"] / TR).astype(int)
        frames = [s + np.arange(skip, d) for s, d in zip(start, duration, strict=True)]
        frames_list.append(np.concatenate(frames))
    return frames_list


def course_selective_average(timeseries_data, ev, skip=0):
    frames = course_condition_frames(ev, skip)
    selected_data = []
    for run_data, run_frames in zip(timeseries_data, frames, strict=True):
        run_frames = run_frames[run_frames < run_data.shape[1]]
        selected_data.append(run_data[:, run_frames])
    return np.concatenate(selected_data, axis=-1).mean(axis=-1)
# --------------------------------------------------------------------------------------------------


def _oracle_motor(hcp_dir, expression, noise_model="ar1"):
    """nilearn's run_glm + compute_contrast on each MOTOR run in percent signal change, fixed effects."""
    contrasts = []
    for direction, k in MOTOR_RUNS.items():
        data, _ = mean_scaling(_timeseries(hcp_dir, k).T.astype(float))
        ev_dir = hcp_dir / "subjects" / SUB / "EVs" / f"tfMRI_MOTOR_{direction}"
        events = pd.concat([pd.DataFrame({**load_evs(ev_dir, c), "trial_type": c})
                            for c in truth.HCP_CONDITIONS["MOTOR"]]).drop(columns="amplitude")
        design = make_first_level_design_matrix(np.arange(len(data)) * TR, events, hrf_model="glover",
                                                drift_model="cosine", high_pass=0.01)
        labels, results = run_glm(data, design.to_numpy(), noise_model=noise_model)
        vector = expression_to_contrast_vector(expression, design.columns.tolist())
        contrasts.append(compute_contrast(labels, results, vector, stat_type="t"))
    return (contrasts[0] + contrasts[1]) * 0.5


@pytest.mark.parametrize("name,expression", [("lfMinusRf", "lf - rf"), ("lf", "lf")])
def test_parcel_glm_equals_run_glm_and_compute_contrast(course_run, name, expression):
    hcp_dir, out = course_run
    table = _read(_func(out, f"sub-{SUB}_task-motor_{SPACE}_contrast-{name}_statmap.tsv"))
    oracle = _oracle_motor(hcp_dir, expression)
    for column, values in [("effect", oracle.effect_size()), ("variance", oracle.effect_variance()),
                           ("t", oracle.stat()), ("z", oracle.z_score()), ("p", oracle.p_value())]:
        np.testing.assert_allclose(table[column], np.ravel(values), rtol=1e-6, atol=1e-6, err_msg=column)
    sidecar = json.loads(_func(out, f"sub-{SUB}_task-motor_{SPACE}_contrast-{name}_statmap.json").read_text())
    assert sidecar["DegreesOfFreedom"] == oracle.dof
    assert sidecar["HRFModel"] == "glover" and sidecar["NoiseModel"] == "ar1"
    assert "one-sided" in sidecar["PValue"].lower()


def test_connectivity_equals_corrcoef(course_run):
    hcp_dir, out = course_run
    cleaned = []
    for entities, k in REST_RUNS.items():
        data = detrend(_timeseries(hcp_dir, k).T.astype(float), axis=0)
        matrix = read_relmat(_func(out, f"sub-{SUB}_task-rest_{entities}_{SPACE}_stat-pearsoncorrelation_relmat.tsv"))
        assert np.abs(matrix.to_numpy() - np.corrcoef(data.T)).max() < 1e-10
        cleaned.append(zscore(data, ddof=1))
    combined = np.corrcoef(np.concatenate(cleaned).T)
    matrix = read_relmat(_func(out, f"sub-{SUB}_task-rest_{SPACE}_stat-pearsoncorrelation_relmat.tsv"))
    assert np.abs(matrix.to_numpy() - combined).max() < 1e-10
    assert list(matrix.index) == list(matrix.columns) and matrix.index[0] == "R_V1"
    fisher = read_relmat(_func(out, f"sub-{SUB}_task-rest_{SPACE}_stat-pearsoncorrelation_desc-fisherz_relmat.tsv"))
    assert np.isnan(np.diag(fisher)).all()
    off = ~np.eye(len(combined), dtype=bool)
    np.testing.assert_allclose(fisher.to_numpy()[off], np.arctanh(combined[off]), atol=1e-10)
    networks = read_relmat(_func(out, f"sub-{SUB}_task-rest_{SPACE}_stat-pearsoncorrelation_desc-networks_relmat.tsv"))
    regions = np.load(hcp_dir / "regions.npy")
    somato = regions[:, 1] == "Somatomotor"
    visual = regions[:, 1] == "Visual1"
    within = np.arctanh(combined[np.ix_(somato, somato)][~np.eye(somato.sum(), dtype=bool)]).mean()
    between = np.arctanh(combined[np.ix_(somato, visual)]).mean()
    assert networks.loc["Somatomotor", "Somatomotor"] == pytest.approx(within, abs=1e-12)
    assert networks.loc["Somatomotor", "Visual1"] == pytest.approx(between, abs=1e-12)
    assert networks.loc["Default", "Default"] > 0.3 > abs(networks.loc["Default", "Visual2"])


def test_partial_correlation_and_covariance_equal_nilearn():
    from nilearn.connectome import ConnectivityMeasure
    from sklearn.covariance import EmpiricalCovariance

    data = np.random.default_rng(0).normal(size=(200, 12)) @ np.random.default_rng(1).normal(size=(12, 12))
    for kind in ("partial correlation", "covariance", "correlation"):
        measure = ConnectivityMeasure(kind=kind, cov_estimator=EmpiricalCovariance())
        np.testing.assert_allclose(connectivity_matrix(data, kind), measure.fit_transform([data])[0], atol=1e-12)
    assert np.isnan(connectivity_matrix(data[:10], "partial correlation")).all()  # fewer volumes than regions
    means = network_means(np.arange(16.0).reshape(4, 4), ["a", "a", "b", "b"])
    assert means.loc["a", "a"] == 2.5 and means.loc["a", "b"] == (2 + 3 + 6 + 7) / 4


def test_pooled_covariance_equals_covariance_of_concatenation():
    rng = np.random.default_rng(3)
    runs = [rng.normal(loc=shift, size=(n, 7)) for shift, n in ((0.0, 50), (2.0, 80), (-1.0, 30))]
    pooled = pooled_covariance(runs, [covariance(run) for run in runs])
    np.testing.assert_allclose(pooled, np.cov(np.concatenate(runs).T, bias=True), rtol=0, atol=1e-13)
    assert np.array_equal(pooled, pooled.T)


@pytest.mark.parametrize("symmetric", [True, False])
def test_relmat_text_reads_back_exactly(symmetric):
    rng = np.random.default_rng(4)
    matrix = connectivity_matrix(rng.normal(size=(40, 6)))
    if not symmetric:
        matrix[0, 1] += 1e-3
    matrix[2, :] = matrix[:, 2] = np.nan
    names = [f"P{k}" for k in range(6)]
    table = read_relmat(io.StringIO(relmat_text(matrix, names)))
    assert list(table.index) == list(table.columns) == names and table.index.name == "node"
    assert np.array_equal(table.to_numpy(), matrix, equal_nan=True)
    reference = pd.DataFrame(matrix, index=pd.Index(names, name="node"), columns=names)
    assert relmat_text(matrix, names) == reference.to_csv(sep="\t", na_rep="n/a", float_format="%.17g",
                                                          lineterminator="\n")


def test_network_hemisphere_means_equal_pivot_table():
    rng = np.random.default_rng(5)
    parcels = pd.DataFrame({"network": rng.choice(["a", "b", "c"], 60), "hemisphere": rng.choice(
        ["right", "left", "n/a"], 60)})
    parcels.loc[parcels["network"] == "c", "hemisphere"] = "left"  # no right-hemisphere parcel of c
    values = rng.normal(size=60)
    values[[3, 7]] = np.nan
    reference = parcels.assign(value=values).pivot_table(index="network", columns="hemisphere", values="value",
                                                          aggfunc="mean", dropna=False)[["right", "left"]]
    ours = network_hemisphere_means(values, parcels)
    np.testing.assert_allclose(ours.to_numpy(), reference.to_numpy(), rtol=1e-14)
    assert list(ours.index) == ["a", "b", "c"] and np.isnan(ours.loc["c", "right"])


def test_planted_contralateral_motor_effect(course_run):
    _, out = course_run
    for subject in ("100307", "100408"):
        func = out / f"sub-{subject}" / "func"
        table = _read(func / f"sub-{subject}_task-motor_{SPACE}_contrast-lfMinusRf_statmap.tsv")
        right = table[table["name"].isin(truth.HCP_RIGHT_SOMATOMOTOR)]
        left = table[table["name"].isin(truth.HCP_LEFT_SOMATOMOTOR)]
        assert (right["z"] > 3).all() and (left["z"] < -3).all()
        assert right["effect"].mean() == pytest.approx(truth.HCP_MOTOR_PSC, rel=0.2)  # percent signal change
        means = network_hemisphere_means(table["effect"].to_numpy(), table)
        assert means.loc["Somatomotor", "right"] > 1 > 0 > -1 > means.loc["Somatomotor", "left"]
        top = rank_parcels(table["effect"].to_numpy(), table, top=10)
        assert top["network"].eq("Somatomotor").all()


def test_selective_average_hand_checked():
    data = np.arange(20.0).reshape(10, 2)  # frame t has values (2t, 2t + 1)
    events = pd.DataFrame({"onset": [2.5, 6.0, 9.2], "duration": [2.0, 1.5, 3.0]})
    # frames floor(2.5)=2 + [0, 1]; floor(6)=6 + [0, 1]; floor(9.2)=9 + [0, 1, 2] -> 9 (10 and 11 are beyond the run)
    np.testing.assert_array_equal(selective_average([data], [events], tr=1.0), data[[2, 3, 6, 7, 9]].mean(axis=0))
    np.testing.assert_array_equal(selective_average([data], [events], tr=1.0, skip=1), data[[3, 7]].mean(axis=0))
    two_runs = selective_average([data, data + 100], [events, events.iloc[:1]], tr=1.0)
    np.testing.assert_array_equal(two_runs, np.concatenate([data[[2, 3, 6, 7, 9]], data[[2, 3]] + 100]).mean(axis=0))


def test_selective_average_output_equals_course_code(course_run):
    hcp_dir, out = course_run
    runs = [_timeseries(hcp_dir, k).astype(float) for k in MOTOR_RUNS.values()]
    runs = [ts - ts.mean(axis=1, keepdims=True) for ts in runs]
    ev_dirs = [hcp_dir / "subjects" / SUB / "EVs" / f"tfMRI_MOTOR_{d}" for d in MOTOR_RUNS]
    averages = {c: course_selective_average(runs, [load_evs(d, c) for d in ev_dirs]) for c in ("lf", "rf")}
    table = _read(_func(out, f"sub-{SUB}_task-motor_{SPACE}_contrast-lfMinusRf_desc-selectiveaverage_statmap.tsv"))
    np.testing.assert_allclose(table["effect"], averages["lf"] - averages["rf"], rtol=1e-10, atol=1e-9)
    assert list(table.columns) == ["name", "hemisphere", "network", "effect"]


def test_outputs_and_sidecars_exist(course_run, capsys):
    hcp_dir, out = course_run
    func = out / f"sub-{SUB}" / "func"
    for name in [f"sub-{SUB}_task-rest_dir-LR_run-1_{SPACE}_stat-pearsoncorrelation_relmat.tsv",
                 f"sub-{SUB}_task-rest_dir-RL_run-2_{SPACE}_stat-pearsoncorrelation_desc-fisherz_relmat.tsv",
                 f"sub-{SUB}_task-rest_{SPACE}_stat-pearsoncorrelation_relmat.tsv",
                 f"sub-{SUB}_task-rest_{SPACE}_stat-pearsoncorrelation_desc-fisherz_relmat.tsv",
                 f"sub-{SUB}_task-rest_{SPACE}_stat-pearsoncorrelation_desc-networks_relmat.tsv",
                 *(f"sub-{SUB}_task-motor_{SPACE}_contrast-{c}_statmap.tsv"
                   for c in ("lfMinusRf", "rfMinusLf", "lhMinusRh", "tMinusAvg", "lf")),
                 f"sub-{SUB}_task-emotion_{SPACE}_contrast-fearMinusNeut_statmap.tsv",
                 f"sub-{SUB}_task-gambling_{SPACE}_contrast-winMinusLoss_desc-selectiveaverage_statmap.tsv"]:
        assert (func / name).is_file(), name
    written = sorted(p.name for p in func.glob("*.tsv") if "_qc" not in p.name)
    for name in written:
        sidecar = json.loads((func / name.replace(".tsv", ".json")).read_text())
        assert sidecar["Sources"] and sidecar["Parameters"], name
    assert len(written) == 4 * 2 + 3 + 2 * (5 + 1 + 1)
    assert (out / f"sub-{SUB}.html").is_file()
    with np.load(hcp_dir / "atlas.npz") as atlas:
        coords = atlas["coords"]
    for desc in ("", "_desc-fisherz"):
        sidecar = json.loads((func / f"sub-{SUB}_task-rest_{SPACE}_stat-pearsoncorrelation{desc}_relmat.json").read_text())
        assert sidecar["Atlas"]["Name"] == "Glasser"
        np.testing.assert_allclose(sidecar["Atlas"]["NodeCoordinates"], coords, atol=0.006)
    statmap = _read(func / f"sub-{SUB}_task-emotion_{SPACE}_contrast-fearMinusNeut_statmap.tsv")
    assert list(statmap.columns) == ["name", "hemisphere", "network", "effect", "variance", "t", "z", "p"]
    assert statmap.loc[statmap["name"] == "R_4", ["hemisphere", "network"]].values.tolist() == [["right",
                                                                                                 "Somatomotor"]]
    capsys.readouterr()
    assert main([str(hcp_dir), str(out), "participant", "--participant-label", SUB, "--contrast", "lf=lf",
                 "defaults", "--dry-run"]) == 0
    plan = capsys.readouterr().out
    assert all(name in plan for name in written if SUB in name)


def test_rerun_skips_complete_outputs(course_run, capsys):
    hcp_dir, out = course_run
    outputs = sorted((out / f"sub-{SUB}").rglob("*.tsv")) + [out / f"sub-{SUB}.html"]
    stamps = {p: p.stat().st_mtime_ns for p in outputs}
    capsys.readouterr()
    assert main([str(hcp_dir), str(out), "participant", "--participant-label", SUB, "--nprocs", "1",
                 "--contrast", "lf=lf", "defaults"]) == 0
    err = capsys.readouterr().err
    assert "connectivity complete, skipped" in err and "GLM complete, skipped" in err
    assert {p: p.stat().st_mtime_ns for p in outputs} == stamps


def _run(root, out, *options):
    return main([str(root), str(out), "participant", "--participant-label", SUB, "--nprocs", "1", *options])


def test_onset_beyond_run_exit_66(hcp, tmp_path, capsys):
    root = hcp("course")
    ev_file = root / "subjects" / SUB / "EVs" / "tfMRI_MOTOR_LR" / "rf.txt"
    ev_file.write_text(ev_file.read_text() + "400\t12\t1\n")
    assert _run(root, tmp_path / "out", "--task", "motor") == 66
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and str(ev_file) in lines[0] and "onset 400 s" in lines[0]


def test_missing_ev_file_warns_and_uses_other_run(hcp, tmp_path, capsys):
    root = hcp("course")
    ev_file = root / "subjects" / SUB / "EVs" / "tfMRI_MOTOR_LR" / "lh.txt"
    ev_file.unlink()
    out = tmp_path / "out"
    assert _run(root, out, "--task", "motor") == 0
    err = capsys.readouterr().err
    assert any("WARNING" in line and str(ev_file) in line for line in err.splitlines())
    sidecar = json.loads(_func(out, f"sub-{SUB}_task-motor_{SPACE}_contrast-lhMinusRh_statmap.json").read_text())
    assert sidecar["RunsCombined"] == [f"sub-{SUB}_task-motor_dir-RL"]


def test_missing_task_run_skips_task(hcp, tmp_path, capsys):
    root = hcp("course")
    missing = root / "subjects" / SUB / "timeseries" / "bold6_Atlas_MSMAll_Glasser360Cortical.npy"
    missing.unlink()
    out = tmp_path / "out"
    assert _run(root, out, "--task", "motor", "emotion") == 0
    err = capsys.readouterr().err
    assert any("WARNING" in line and str(missing) in line and "motor" in line for line in err.splitlines())
    assert not list((out / f"sub-{SUB}" / "func").glob("*task-motor*statmap.tsv"))
    assert _func(out, f"sub-{SUB}_task-emotion_{SPACE}_contrast-fearMinusNeut_statmap.tsv").is_file()


def test_regions_in_another_order_are_matched_by_name(hcp, tmp_path, capsys):
    root = hcp("bids")
    dseg = root / "atlases" / "atlas-Glasser" / "atlas-Glasser_dseg.tsv"
    table = pd.read_csv(dseg, sep="\t")
    table.iloc[::-1].to_csv(dseg, sep="\t", index=False)
    out = tmp_path / "out"
    assert _run(root, out, "--task", "emotion") == 0
    err = capsys.readouterr().err
    assert any("WARNING" in line and str(dseg) in line and "matched by name" in line for line in err.splitlines())
    statmap = _read(_func(out, f"sub-{SUB}_task-emotion_{SPACE}_contrast-fearMinusNeut_statmap.tsv"))
    pd.testing.assert_frame_equal(statmap[["name", "hemisphere", "network"]], table[["name", "hemisphere", "network"]])
    table[table["name"] != "L_V1"].to_csv(dseg, sep="\t", index=False)
    assert _run(root, tmp_path / "out2", "--task", "emotion") == 66
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and str(dseg) in lines[0] and "L_V1" in lines[0]


@pytest.mark.parametrize("options,needle", [(["--denoise-strategy", "36P"], "--denoise-strategy 36P"),
                                            (["--contrast", "xMinusY=x - y"], "--contrast xMinusY")])
def test_bad_options_exit_2(hcp_templates, tmp_path, capsys, options, needle):
    assert _run(hcp_templates["course"], tmp_path / "out", "--task", "emotion", *options) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and needle in lines[0]


def test_converted_dataset_gives_the_same_results(hcp_templates, tmp_path, capsys):
    converted = tmp_path / "bids"
    assert convert.main([str(hcp_templates["course"]), str(converted), "--participant-label", SUB]) == 0
    assert (converted / f"sub-{SUB}" / "func" / f"sub-{SUB}_task-motor_dir-LR_events.tsv").is_file()
    for source, out in ((hcp_templates["course"], tmp_path / "a"), (converted, tmp_path / "b")):
        assert _run(source, out, "--task", "motor") == 0
    for path in sorted((tmp_path / "a" / f"sub-{SUB}" / "func").glob("*statmap.tsv")):
        pd.testing.assert_frame_equal(_read(path), _read(tmp_path / "b" / path.relative_to(tmp_path / "a")))


def test_convert_reports_bad_runs(hcp, tmp_path, capsys):
    root = hcp("course")
    bad = root / "subjects" / SUB / "timeseries" / "bold9_Atlas_MSMAll_Glasser360Cortical.npy"
    np.save(bad, np.load(bad).T)
    assert convert.main([str(root), str(tmp_path / "bids")]) == 66
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0] and "transpose" in err[0]
    assert not list((tmp_path / "bids" / f"sub-{SUB}" / "func").glob("*task-emotion_dir-RL*"))
    assert os.path.isfile(tmp_path / "bids" / "atlases" / "atlas-Glasser" / "atlas-Glasser_dseg.tsv")


def test_hcp_task_presets_expand_to_contrasts():
    from bidsapp.steps.glm.contrasts import Contrast, contrast_vector
    from bidsapp.steps.task_models import design_conditions, hcp_task_presets, task_contrasts

    presets = hcp_task_presets()
    evs = ["0bk_body", "0bk_faces", "2bk_body", "2bk_faces", "0bk_cor", "2bk_err", "all_bk_cor"]
    conditions = design_conditions("WM", evs, presets)
    assert conditions == ["0bk_body", "0bk_faces", "2bk_body", "2bk_faces"]
    (wm,) = task_contrasts("wm", conditions, [], presets)
    assert wm.name == "2bkMinus0bk"
    np.testing.assert_allclose(contrast_vector(wm, conditions), [-0.5, -0.5, 0.5, 0.5])
    mine = [Contrast("lfMinusRf", "2*lf - 2*rf"), Contrast("wm", "`0bk_body` - `2bk_body`")]
    motor = task_contrasts("motor", ["cue", "lf", "lh", "rf", "rh", "t"], mine, presets, defaults=True)
    assert [c.name for c in motor] == ["rfMinusLf", "lhMinusRh", "tMinusAvg", "lfMinusRf"]
    # --contrast without 'defaults' replaces the defaults: only the user's contrasts of this task's conditions
    assert task_contrasts("motor", ["cue", "lf", "lh", "rf", "rh", "t"], mine, presets) == mine[:1]
    np.testing.assert_allclose(contrast_vector(motor[2], ["lf", "lh", "rf", "rh", "t"]), [-0.2] * 4 + [0.8])
    assert [c.name for c in task_contrasts("nback", ["go", "stop"], [], presets)] == [
        "go", "stop", "goMinusStop", "stopMinusGo"]


@pytest.mark.parametrize("hemisphere", ["left", "right"])
def test_lateral_view_shows_the_nearest_face_at_each_pixel(hemisphere):
    """Brute force on sampled pixels: of the faces whose projection holds the pixel centre, the nearest is shown."""
    from nilearn.datasets import load_fsaverage

    pixels, faces, shading = reports_parcels.lateral_view(hemisphere)
    part = load_fsaverage("fsaverage5")["inflated"].parts[hemisphere]
    xyz = np.asarray(part.coordinates, dtype=float)
    toward = -1.0 if hemisphere == "left" else 1.0
    screen = np.c_[toward * xyz[:, 1], -xyz[:, 2]]
    screen = (screen - screen.min(axis=0)) * reports_parcels.SURFACE_PIXELS_PER_MM
    corners, depth = screen[faces], toward * xyz[faces][:, :, 0].mean(axis=1)
    assert 0.5 < (pixels >= 0).mean() < 0.9 and (shading[pixels[pixels >= 0]] > 0).all()
    rng = np.random.default_rng(0)
    for row, column in zip(rng.integers(0, pixels.shape[0], 300), rng.integers(0, pixels.shape[1], 300)):
        point = np.array([column + 0.5, row + 0.5])
        a, b, c = corners[:, 0], corners[:, 1], corners[:, 2]
        matrix = np.stack([b - a, c - a], axis=-1)
        front = shading > 0
        weights = np.linalg.solve(matrix[front], (point - a[front])[..., None])[..., 0]
        holds = (weights >= -1e-9).all(axis=1) & (weights.sum(axis=1) <= 1 + 1e-9)
        if not holds.any():
            assert pixels[row, column] == -1
            continue
        nearest = np.flatnonzero(front)[holds][np.argmax(depth[front][holds])]
        assert depth[pixels[row, column]] == pytest.approx(depth[nearest])


def test_report_sections_and_surface(course_run, hcp, tmp_path):
    _, out = course_run
    report = (out / f"sub-{SUB}.html").read_text()
    for text in ("Resting connectivity", "connectivity profile of R_FEF", "Task contrasts", "lfMinusRf: parcels by |effect|"):
        assert text in report
    root = hcp("course")
    rng = np.random.default_rng(0)
    np.savez(root / "atlas.npz", labels_R=rng.integers(0, 180, 10242), labels_L=rng.integers(180, 360, 10242))
    assert _run(root, tmp_path / "out", "--task", "emotion") == 0
    report = (tmp_path / "out" / f"sub-{SUB}.html").read_text()
    assert report.count("<img") == 1 and "alt='emotion: fearMinusNeut: effect'" in report  # the surface map
