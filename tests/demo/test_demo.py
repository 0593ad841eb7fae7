"""Tests of the embedded demo dataset (bidsapp.demo).

The expensive dataset is built once per module.  Planted effects are
checked with independent, plain-numpy computations, and the HCP course
layout is read with the HCP course's own loader functions (copied below
as the oracle).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bidsapp.demo import (
    derivative_paths,
    truth,
    write_fmriprep_dataset,
    write_hcp_bids_dataset,
    write_hcp_course_dataset,
)
from bidsapp.demo.__main__ import main as demo_main

SPACE = "MNI152NLin2009cAsym"
MOTION = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]


# --------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def participants(demo) -> pd.DataFrame:
    return pd.read_csv(demo.bids_dir / "participants.tsv", sep="\t")


@pytest.fixture(scope="module", params=["1.4", "1.0"])
def legacy(request, tmp_path_factory):
    """Small datasets in the older fMRIPrep namings, with sessions."""
    naming = request.param
    bids = tmp_path_factory.mktemp(f"legacy{naming}") / "bids"
    fmriprep = write_fmriprep_dataset(
        bids,
        participants=["ab", "cd"],
        sessions=["1", "2"],
        n_task_runs=1,
        confounds_naming=naming,
        seed=3,
        rest_volumes=40,
        task_volumes=40,
    )
    return naming, bids, fmriprep


def _validator() -> Path:
    exe = Path(sys.executable).parent / ("bids-validator-deno" + (".exe" if os.name == "nt" else ""))
    assert exe.exists(), f"bids-validator-deno not found next to {sys.executable}; install the test extra"
    return exe


def _validate(bids_dir: Path) -> None:
    proc = subprocess.run(
        [str(_validator()), str(bids_dir)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


# --------------------------------------------------------------------------
# Plain-numpy helpers (independent of bidsapp.demo internals)
# --------------------------------------------------------------------------


def _hrf(dt: float) -> np.ndarray:
    t = np.arange(0.0, 32.0, dt)
    h = stats.gamma.pdf(t, 6) - stats.gamma.pdf(t, 16) / 6.0
    return h / h.sum()


def _convolved_boxcar(events: pd.DataFrame, n: int, tr: float, osf: int = 16) -> np.ndarray:
    t = np.arange(n * osf) * tr / osf
    box = np.zeros(n * osf)
    for onset, dur in zip(events["onset"], events["duration"]):
        box[(t >= onset) & (t < onset + dur)] = 1.0
    return np.convolve(box, _hrf(tr / osf))[: n * osf : osf]


def _sphere_means(img, centers, radius=6.0) -> np.ndarray:
    """Mean time series in spheres around MNI centres (frames x spheres)."""
    ijk = np.indices(img.shape[:3]).reshape(3, -1)
    xyz = (img.affine[:3, :3] @ ijk + img.affine[:3, 3:4]).T
    data = np.asarray(img.dataobj).reshape(-1, img.shape[3])
    out = []
    for center in centers:
        sel = ((xyz - np.asarray(center)) ** 2).sum(1) <= radius**2
        assert sel.sum() > 3
        out.append(data[sel].mean(0))
    return np.array(out).T


def _func(demo, sub):
    return demo.fmriprep_dir / sub / "func"


# --------------------------------------------------------------------------
# Layout, raw BIDS and validation
# --------------------------------------------------------------------------


def test_demo_paths(demo):
    assert demo.bids_dir == demo.root / "bids"
    assert demo.fmriprep_dir == demo.bids_dir / "derivatives" / "fmriprep"
    assert demo.hcp_dir == demo.root / "hcp"
    assert demo.hcp_bids_dir == demo.root / "hcp_bids"
    for p in (demo.bids_dir, demo.fmriprep_dir, demo.hcp_dir, demo.hcp_bids_dir):
        assert p.is_dir()
    with pytest.raises(AttributeError):
        demo.root = Path("/elsewhere")  # frozen


def test_raw_bids_is_valid(demo):
    _validate(demo.bids_dir)


def test_raw_bids_with_sessions_is_valid(legacy):
    _, bids, _ = legacy
    _validate(bids)


def test_participants(demo, participants):
    assert list(participants.columns) == ["participant_id", "group", "age", "sex"]
    assert len(participants) == 8
    assert participants["group"].value_counts().to_dict() == {"control": 4, "patient": 4}
    meta = json.loads((demo.bids_dir / "participants.json").read_text())
    assert set(meta) == set(participants.columns)
    desc = json.loads((demo.bids_dir / "dataset_description.json").read_text())
    assert desc["BIDSVersion"] == "1.10.0" and desc["Name"] and desc["Authors"]


def test_raw_runs_match_derivatives(demo, participants):
    for sub in participants["participant_id"]:
        raw = demo.bids_dir / sub / "func"
        assert (demo.bids_dir / sub / "anat" / f"{sub}_T1w.nii.gz").exists()
        for stem, deriv, n in (
            (f"{sub}_task-rest", f"{sub}_task-rest", truth.REST_VOLUMES),
            (f"{sub}_task-motor_run-01", f"{sub}_task-motor_run-1", truth.TASK_VOLUMES),
            (f"{sub}_task-motor_run-02", f"{sub}_task-motor_run-2", truth.TASK_VOLUMES),
        ):
            side = json.loads((raw / f"{stem}_bold.json").read_text())
            assert side["RepetitionTime"] == truth.FMRIPREP_TR
            assert side["TaskName"] in ("rest", "motor")
            rimg = nib.load(raw / f"{stem}_bold.nii.gz")
            dimg = nib.load(_func(demo, sub) / f"{deriv}_space-{SPACE}_desc-preproc_bold.nii.gz")
            assert rimg.shape[3] == dimg.shape[3] == n
            assert rimg.header.get_zooms()[3] == pytest.approx(truth.FMRIPREP_TR)
            assert dimg.header.get_zooms()[3] == pytest.approx(truth.FMRIPREP_TR)
            dside = json.loads(
                (_func(demo, sub) / f"{deriv}_space-{SPACE}_desc-preproc_bold.json").read_text()
            )
            assert dside["RepetitionTime"] == truth.FMRIPREP_TR
            assert dside["TaskName"] == side["TaskName"]
            assert "SkullStripped" in dside
        for run in ("01", "02"):
            ev = pd.read_csv(raw / f"{sub}_task-motor_run-{run}_events.tsv", sep="\t")
            assert list(ev.columns) == ["onset", "duration", "trial_type"]
            assert set(ev["trial_type"]) == {"lf", "rf"}
            assert (ev["onset"] + ev["duration"]).max() <= truth.TASK_VOLUMES * truth.FMRIPREP_TR


def test_fmriprep_description(demo):
    desc = json.loads((demo.fmriprep_dir / "dataset_description.json").read_text())
    assert desc["DatasetType"] == "derivative"
    gen = desc["GeneratedBy"][0]
    assert gen["Name"] == "fMRIPrep"
    assert int(gen["Version"].split(".")[0]) >= 21


def test_preproc_images(demo):
    from nilearn import datasets

    func = _func(demo, "sub-01")
    bold = nib.load(func / f"sub-01_task-rest_space-{SPACE}_desc-preproc_bold.nii.gz")
    mask = nib.load(func / f"sub-01_task-rest_space-{SPACE}_desc-brain_mask.nii.gz")
    assert bold.get_data_dtype() == np.float32
    assert mask.get_data_dtype() == np.uint8
    assert np.allclose(np.diag(bold.affine)[:3], 4.0)
    assert np.allclose(bold.affine, mask.affine)
    m = np.asarray(mask.dataobj).astype(bool)
    data = np.asarray(bold.dataobj)
    assert not data[~m].any()
    steady = data[m][:, truth.N_NON_STEADY_STATE :].mean()
    assert 900 < steady < 1100
    # the mask covers the brain: nearly all of nilearn's MNI152 brain mask
    ref = datasets.load_mni152_brain_mask(resolution=2)
    ijk = np.argwhere(np.asarray(ref.dataobj) > 0)[::50]
    xyz = nib.affines.apply_affine(ref.affine, ijk)
    vox = np.rint(nib.affines.apply_affine(np.linalg.inv(mask.affine), xyz)).astype(int)
    assert m[tuple(vox.T)].mean() > 0.9
    # non-steady-state volumes are much brighter
    means = data[m].mean(0)
    assert means[0] > 1.3 * np.median(means) and means[1] > 1.1 * np.median(means)


# --------------------------------------------------------------------------
# Confounds in the three fMRIPrep namings
# --------------------------------------------------------------------------

_EXPECTED_21 = (
    {
        f"{b}{s}"
        for b in ("global_signal", "csf", "white_matter", *MOTION)
        for s in ("", "_derivative1", "_power2", "_derivative1_power2")
    }
    | {"framewise_displacement", "dvars", "std_dvars", "rmsd", "csf_wm", "tcompcor"}
    | {"non_steady_state_outlier00", "non_steady_state_outlier01", "a_comp_cor_00"}
    | {"c_comp_cor_00", "w_comp_cor_00", "t_comp_cor_00", "cosine00", "motion_outlier00"}
)


def _check_confounds_table(conf: pd.DataFrame, nan_cols: list[str], nss_prefix: str, fd_col: str):
    for col in nan_cols:
        assert np.isnan(conf[col].iloc[0]), col
        assert conf[col].iloc[1:].notna().all(), col
    nss = conf[[f"{nss_prefix}00", f"{nss_prefix}01"]].to_numpy()
    assert np.array_equal(nss[:2], np.eye(2)) and not nss[2:].any()
    assert (conf[fd_col] > 0.5).sum() >= 1


def test_confounds_21(demo, participants):
    n_fd = []
    for sub in participants["participant_id"]:
        for stem in (f"{sub}_task-rest", f"{sub}_task-motor_run-1", f"{sub}_task-motor_run-2"):
            paths = derivative_paths(_func(demo, sub), stem, "21+")
            assert paths["confounds"].name == f"{stem}_desc-confounds_timeseries.tsv"
            for p in paths.values():
                assert p.exists(), p
            raw_text = paths["confounds"].read_text().splitlines()
            assert "n/a" in raw_text[1].split("\t")
            conf = pd.read_csv(paths["confounds"], sep="\t")
            assert _EXPECTED_21 <= set(conf.columns)
            nan_cols = [c for c in conf.columns if "derivative1" in c]
            nan_cols += ["framewise_displacement", "dvars", "std_dvars", "rmsd"]
            _check_confounds_table(conf, nan_cols, "non_steady_state_outlier", "framewise_displacement")
            # FD is Power's FD of the motion parameters (50 mm head radius)
            d = np.abs(np.diff(conf[MOTION].to_numpy(), axis=0))
            fd = d[:, :3].sum(1) + 50.0 * d[:, 3:].sum(1)
            assert np.allclose(conf["framewise_displacement"].iloc[1:], fd, atol=1e-6)
            # motion outliers flag every frame with FD > 0.5 mm
            outl = conf.filter(like="motion_outlier").to_numpy().sum(1) > 0
            assert outl[conf["framewise_displacement"].fillna(0).to_numpy() > 0.5].all()
            n_fd.append(int((conf["framewise_displacement"] > 0.5).sum()))
            meta = json.loads(paths["confounds_json"].read_text())
            a0 = meta["a_comp_cor_00"]
            assert {"Method", "Mask", "Retained", "VarianceExplained",
                    "CumulativeVarianceExplained", "SingularValue"} <= set(a0)  # fmt: skip
            assert a0["Mask"] == "combined" and a0["Method"] == "aCompCor" and a0["Retained"]
            assert meta["c_comp_cor_00"]["Mask"] == "CSF" and meta["w_comp_cor_00"]["Mask"] == "WM"
            assert meta["t_comp_cor_00"]["Method"] == "tCompCor"
            assert meta["global_signal"] == {"Method": "Mean"}
    # a handful of high-motion volumes per run, more in some participants
    assert 1 <= min(n_fd) and max(n_fd) <= 20 and max(n_fd) > min(n_fd)


def test_confounds_consistent_with_data(demo):
    func = _func(demo, "sub-02")
    img = nib.load(func / f"sub-02_task-rest_space-{SPACE}_desc-preproc_bold.nii.gz")
    mask = np.asarray(nib.load(func / f"sub-02_task-rest_space-{SPACE}_desc-brain_mask.nii.gz").dataobj) > 0
    conf = pd.read_csv(func / "sub-02_task-rest_desc-confounds_timeseries.tsv", sep="\t")
    gs = np.asarray(img.dataobj)[mask].mean(0)
    assert np.allclose(conf["global_signal"], gs, rtol=1e-3)
    comps = conf.filter(like="a_comp_cor").to_numpy()[truth.N_NON_STEADY_STATE :]
    assert np.allclose(comps.T @ comps, np.eye(comps.shape[1]), atol=1e-6)


def test_confounds_legacy(legacy):
    naming, bids, fmriprep = legacy
    desc = json.loads((fmriprep / "dataset_description.json").read_text())
    version = desc["GeneratedBy"][0]["Version"]
    assert version.startswith("1.4" if naming == "1.4" else "1.0")
    func = fmriprep / "sub-ab" / "ses-2" / "func"
    assert (bids / "sub-ab" / "ses-2" / "func" / "sub-ab_ses-2_task-motor_run-01_events.tsv").exists()
    for stem in ("sub-ab_ses-2_task-rest", "sub-ab_ses-2_task-motor_run-1"):
        if naming == "1.4":
            bold = func / f"{stem}_space-{SPACE}_desc-preproc_bold.nii.gz"
            tsv = func / f"{stem}_desc-confounds_regressors.tsv"
            assert (func / f"{stem}_space-{SPACE}_desc-brain_mask.nii.gz").exists()
            assert (func / f"{stem}_desc-confounds_regressors.json").exists()
        else:
            bold = func / f"{stem}_bold_space-{SPACE}_preproc.nii.gz"
            tsv = func / f"{stem}_bold_confounds.tsv"
            assert (func / f"{stem}_bold_space-{SPACE}_brainmask.nii.gz").exists()
            assert not list(func.glob("*.json"))
        assert bold.exists() and tsv.exists()
        conf = pd.read_csv(tsv, sep="\t")
        if naming == "1.4":
            assert {"csf", "white_matter", "global_signal", "std_dvars", "dvars",
                    "framewise_displacement", "t_comp_cor_05", "a_comp_cor_00",
                    "cosine00", "non_steady_state_outlier00", *MOTION,
                    "trans_x_derivative1_power2"} <= set(conf.columns)  # fmt: skip
            assert not any(c.startswith(("c_comp_cor", "w_comp_cor", "motion_outlier")) for c in conf)
            nan_cols = [c for c in conf.columns if "derivative1" in c]
            nan_cols += ["framewise_displacement", "dvars", "std_dvars"]
            _check_confounds_table(conf, nan_cols, "non_steady_state_outlier", "framewise_displacement")
            meta = json.loads(tsv.with_suffix(".json").read_text())
            masks = {v.get("Mask") for k, v in meta.items() if k.startswith("a_comp_cor")}
            assert masks == {"combined", "CSF", "WM"}
            assert any(k.startswith("dropped_") and not v["Retained"] for k, v in meta.items())
        else:
            expected = ["CSF", "WhiteMatter", "GlobalSignal", "stdDVARS", "non-stdDVARS",
                        "vx-wisestdDVARS", "FramewiseDisplacement", "tCompCor00", "aCompCor05",
                        "Cosine00", "NonSteadyStateOutlier00", "X", "Y", "Z", "RotX", "RotY", "RotZ"]  # fmt: skip
            assert set(expected) <= set(conf.columns)
            assert not any("_" in c for c in conf.columns)
            nan_cols = ["stdDVARS", "non-stdDVARS", "vx-wisestdDVARS", "FramewiseDisplacement"]
            _check_confounds_table(conf, nan_cols, "NonSteadyStateOutlier", "FramewiseDisplacement")


# --------------------------------------------------------------------------
# Planted effects, voxel-wise
# --------------------------------------------------------------------------


def test_task_effect_lf_minus_rf(demo, participants):
    blobs = {b.name: b for b in truth.TASK_BLOBS}
    for sub in participants["participant_id"]:
        contrast = {"right_motor": [], "left_motor": []}
        for run in (1, 2):
            func = _func(demo, sub)
            img = nib.load(func / f"{sub}_task-motor_run-{run}_space-{SPACE}_desc-preproc_bold.nii.gz")
            conf = pd.read_csv(func / f"{sub}_task-motor_run-{run}_desc-confounds_timeseries.tsv", sep="\t")
            ev = pd.read_csv(demo.bids_dir / sub / "func" / f"{sub}_task-motor_run-0{run}_events.tsv", sep="\t")
            n, tr = img.shape[3], float(img.header.get_zooms()[3])
            design = np.column_stack(
                [_convolved_boxcar(ev[ev.trial_type == c], n, tr) for c in ("lf", "rf")]
                + [conf[MOTION].to_numpy(), conf.filter(like="cosine").to_numpy(), np.ones(n)]
            )
            keep = np.arange(n) >= truth.N_NON_STEADY_STATE
            ys = _sphere_means(img, [blobs[name].center_mm for name in contrast])
            for name, y in zip(contrast, ys.T):
                beta = np.linalg.lstsq(design[keep], y[keep], rcond=None)[0]
                contrast[name].append((beta[0] - beta[1]) / y[keep].mean() * 100.0)
        assert np.mean(contrast["right_motor"]) > 0.5, (sub, contrast)
        assert np.mean(contrast["left_motor"]) < -0.5, (sub, contrast)
        assert truth.LF_MINUS_RF_SIGN["right_motor"] == 1 and truth.LF_MINUS_RF_SIGN["left_motor"] == -1


def _node_correlations(demo, sub):
    func = _func(demo, sub)
    img = nib.load(func / f"{sub}_task-rest_space-{SPACE}_desc-preproc_bold.nii.gz")
    conf = pd.read_csv(func / f"{sub}_task-rest_desc-confounds_timeseries.tsv", sep="\t")
    labels = [net.name for net in truth.REST_NETWORKS for _ in net.nodes]
    centers = [node.center_mm for net in truth.REST_NETWORKS for node in net.nodes]
    k = truth.N_NON_STEADY_STATE
    y = _sphere_means(img, centers, truth.NODE_RADIUS_MM)[k:]
    nuis = np.column_stack(
        [conf[MOTION].to_numpy(), conf[["csf", "white_matter"]].to_numpy(),
         conf.filter(like="cosine").to_numpy(), np.ones(len(conf))]  # fmt: skip
    )[k:]
    y = y - nuis @ np.linalg.lstsq(nuis, y, rcond=None)[0]
    return np.array(labels), np.corrcoef(y.T)


def test_rest_networks_and_group_difference(demo, participants):
    dmn = {"control": [], "patient": []}
    for sub, group in zip(participants["participant_id"], participants["group"]):
        labels, r = _node_correlations(demo, sub)
        same = labels[:, None] == labels[None, :]
        off = ~np.eye(len(labels), dtype=bool)
        within, between = r[same & off].mean(), r[~same].mean()
        assert within > between + 0.2, (sub, within, between)
        assert abs(between - truth.BETWEEN_NETWORK_CORRELATION) < 0.2
        d = labels == "default_mode"
        dmn[group].append(r[np.ix_(d, d)][~np.eye(d.sum(), dtype=bool)].mean())
        sm = labels == "somatomotor"
        assert r[np.ix_(sm, sm)][~np.eye(sm.sum(), dtype=bool)].mean() > 0.3
    assert np.mean(dmn["control"]) - np.mean(dmn["patient"]) > 0.5 * truth.DMN_GROUP_DIFFERENCE
    assert min(dmn["control"]) > max(dmn["patient"])


# --------------------------------------------------------------------------
# HCP course layout, read with the course's own loaders (oracle)
# --------------------------------------------------------------------------

HCP_TR = 0.72
N_RUNS_REST = 4
N_RUNS_TASK = 2
BOLD_NAMES = [
    "rfMRI_REST1_LR", "rfMRI_REST1_RL", "rfMRI_REST2_LR", "rfMRI_REST2_RL",
    "tfMRI_MOTOR_RL", "tfMRI_MOTOR_LR", "tfMRI_WM_RL", "tfMRI_WM_LR",
    "tfMRI_EMOTION_RL", "tfMRI_EMOTION_LR", "tfMRI_GAMBLING_RL", "tfMRI_GAMBLING_LR",
    "tfMRI_LANGUAGE_RL", "tfMRI_LANGUAGE_LR", "tfMRI_RELATIONAL_RL", "tfMRI_RELATIONAL_LR",
    "tfMRI_SOCIAL_RL", "tfMRI_SOCIAL_LR",
]  # fmt: skip


def get_image_ids(name):
    run_ids = [i for i, code in enumerate(BOLD_NAMES, 1) if name.upper() in code]
    if not run_ids:
        raise ValueError(f"Found no data for '{name}'")
    return run_ids


def load_single_timeseries(subject, bold_run, dir, remove_mean=True):
    bold_path = os.path.join(dir, "subjects", str(subject), "timeseries")
    bold_file = f"bold{bold_run}_Atlas_MSMAll_Glasser360Cortical.npy"
    ts = np.load(os.path.join(bold_path, bold_file))
    if remove_mean:
        ts -= ts.mean(axis=1, keepdims=True)
    return ts


def load_timeseries(subject, name, dir, runs=None, concat=True, remove_mean=True):
    if runs is None:
        runs = range(N_RUNS_REST) if name == "rest" else range(N_RUNS_TASK)
    elif isinstance(runs, int):
        runs = [runs]
    offset = get_image_ids(name)[0]
    bold_data = [load_single_timeseries(subject, offset + run, dir, remove_mean) for run in runs]
    if concat:
        bold_data = np.concatenate(bold_data, axis=-1)
    return bold_data


def load_evs(subject, name, condition, dir):
    evs = []
    for id in get_image_ids(name):
        task_key = BOLD_NAMES[id - 1]
        ev_file = os.path.join(dir, "subjects", str(subject), "EVs", task_key, f"{condition}.txt")
        ev_array = np.loadtxt(ev_file, ndmin=2, unpack=True)
        ev = dict(zip(["onset", "duration", "amplitude"], ev_array))
        evs.append(ev)
    return evs


def condition_frames(run_evs, skip=0):
    frames_list = []
    for ev in run_evs:
        start = np.floor(ev["onset"] / HCP_TR).astype(int)
        duration = np.ceil(ev["duration"] / HCP_TR).astype(int)
        frames = [s + np.arange(skip, d) for s, d in zip(start, duration)]
        frames_list.append(np.concatenate(frames))
    return frames_list


def selective_average(timeseries_data, ev, skip=0):
    if not isinstance(timeseries_data, list):
        timeseries_data = [timeseries_data]
    if not isinstance(ev, list):
        ev = [ev]
    if len(timeseries_data) != len(ev):
        raise ValueError("Length of `timeseries_data` and `ev` must match.")
    frames = condition_frames(ev, skip)
    selected_data = []
    for run_data, run_frames in zip(timeseries_data, frames):
        run_frames = run_frames[run_frames < run_data.shape[1]]
        selected_data.append(run_data[:, run_frames])
    return np.concatenate(selected_data, axis=-1).mean(axis=-1)


@pytest.fixture(scope="module")
def regions(demo):
    regions = np.load(demo.hcp_dir / "regions.npy").T
    return dict(name=regions[0].tolist(), network=regions[1], myelin=regions[2].astype(float))


def _hcp_subjects(demo):
    return sorted(p.name for p in (demo.hcp_dir / "subjects").iterdir())


def test_hcp_course_layout(demo, regions):
    raw = np.load(demo.hcp_dir / "regions.npy")
    assert raw.shape == (360, 3)
    assert regions["name"][0] == "R_V1" and regions["name"][180] == "L_V1"
    assert len(set(regions["network"])) == 12
    subjects = _hcp_subjects(demo)
    assert len(subjects) == 8 and all(len(s) == 6 and s.isdigit() for s in subjects)
    sub = subjects[0]
    assert get_image_ids("rest") == [1, 2, 3, 4]
    rest = load_timeseries(sub, "rest", str(demo.hcp_dir))
    assert rest.shape == (360, 4 * truth.HCP_REST_FRAMES)
    for task, frames in (("MOTOR", 284), ("EMOTION", 176), ("GAMBLING", 253)):
        for run in load_timeseries(sub, task, str(demo.hcp_dir), concat=False):
            assert run.shape == (360, frames)
        for cond in truth.HCP_CONDITIONS[task]:
            evs = load_evs(sub, task, cond, str(demo.hcp_dir))
            assert len(evs) == 2 and all(len(ev["onset"]) >= 1 for ev in evs)
    # tasks not simulated are absent
    assert not (demo.hcp_dir / "subjects" / sub / "timeseries" / "bold7_Atlas_MSMAll_Glasser360Cortical.npy").exists()


def _group_contrast(demo, task, cond_a, cond_b):
    out = []
    for sub in _hcp_subjects(demo):
        ts = load_timeseries(sub, task, str(demo.hcp_dir), concat=False)
        evs = [load_evs(sub, task, c, str(demo.hcp_dir)) for c in (cond_a, cond_b)]
        a, b = (selective_average(ts, ev, skip=4) for ev in evs)
        baseline = np.load(demo.hcp_dir / "subjects" / sub / "timeseries" / "bold5_Atlas_MSMAll_Glasser360Cortical.npy").mean(1)
        out.append((a - b) / baseline * 100.0)
    return np.array(out)


def test_hcp_motor_contrast(demo, regions):
    names = np.array(regions["name"])
    right = np.isin(names, truth.HCP_RIGHT_SOMATOMOTOR)
    left = np.isin(names, truth.HCP_LEFT_SOMATOMOTOR)
    assert right.sum() == 19 and left.sum() == 20
    assert all(n.startswith("R_") for n in names[right]) and all(n.startswith("L_") for n in names[left])
    for a, b in (("lf", "rf"), ("lh", "rh")):
        c = _group_contrast(demo, "MOTOR", a, b)
        assert (c[:, right].mean(1) > 0.5).all()
        assert (c[:, left].mean(1) < -0.5).all()
        others = ~(right | left)
        assert abs(c[:, others].mean()) < 0.2


def test_hcp_emotion_and_gambling_contrasts(demo, regions):
    names = np.array(regions["name"])
    emo = np.isin(names, truth.HCP_EMOTION_PARCELS)
    c = _group_contrast(demo, "EMOTION", "fear", "neut").mean(0)
    assert c[emo].min() > 0.5 and abs(c[~emo].mean()) < 0.2
    gam = np.isin(names, truth.HCP_GAMBLING_PARCELS)
    c = _group_contrast(demo, "GAMBLING", "win", "loss").mean(0)
    assert c[gam].min() > 0.4 and abs(c[~gam].mean()) < 0.2


def test_hcp_rest_networks(demo, regions):
    net = np.asarray(regions["network"])
    same = net[:, None] == net[None, :]
    off = ~np.eye(len(net), dtype=bool)
    for sub in _hcp_subjects(demo):
        r = np.corrcoef(load_timeseries(sub, "rest", str(demo.hcp_dir)))
        assert r[same & off].mean() > r[~same].mean() + 0.2


# --------------------------------------------------------------------------
# HCP BIDS-style form
# --------------------------------------------------------------------------


def test_hcp_bids_form(demo, regions):
    root = demo.hcp_bids_dir
    desc = json.loads((root / "dataset_description.json").read_text())
    assert desc["DatasetType"] == "derivative" and desc["BIDSVersion"]
    parts = pd.read_csv(root / "participants.tsv", sep="\t")
    subjects = _hcp_subjects(demo)
    assert parts["participant_id"].tolist() == [f"sub-{s}" for s in subjects]
    sub = subjects[1]
    func = root / f"sub-{sub}" / "func"
    suffix = "space-fsLR_seg-Glasser_stat-mean_timeseries"
    for stem, course_k, frames in (
        (f"sub-{sub}_task-rest_dir-LR_run-1", 1, truth.HCP_REST_FRAMES),
        (f"sub-{sub}_task-rest_dir-RL_run-2", 4, truth.HCP_REST_FRAMES),
        (f"sub-{sub}_task-motor_dir-RL", 5, 284),
        (f"sub-{sub}_task-emotion_dir-LR", 10, 176),
        (f"sub-{sub}_task-gambling_dir-RL", 11, 253),
    ):
        table = pd.read_csv(func / f"{stem}_{suffix}.tsv", sep="\t")
        assert table.shape == (frames, 360)
        assert table.columns.tolist() == regions["name"]
        meta = json.loads((func / f"{stem}_{suffix}.json").read_text())
        assert meta["RepetitionTime"] == HCP_TR
        course = load_single_timeseries(sub, course_k, str(demo.hcp_dir), remove_mean=False)
        assert np.allclose(table.to_numpy().T, course, atol=0.6)
        if "rest" not in stem:
            ev = pd.read_csv(func / f"{stem}_events.tsv", sep="\t")
            assert list(ev.columns) == ["onset", "duration", "trial_type", "amplitude"]
            task = stem.split("task-")[1].split("_")[0].upper()
            assert set(ev["trial_type"]) == set(truth.HCP_CONDITIONS[task])


# --------------------------------------------------------------------------
# Determinism and command line
# --------------------------------------------------------------------------


def test_hcp_writers_are_deterministic(tmp_path):
    kw = dict(subjects=["100307"], seed=5, rest_frames=40, tasks=("MOTOR",))
    a = write_hcp_course_dataset(tmp_path / "a", **kw)
    b = write_hcp_course_dataset(tmp_path / "b", **kw)
    c = write_hcp_bids_dataset(tmp_path / "c", **kw)
    f = "subjects/100307/timeseries/bold5_Atlas_MSMAll_Glasser360Cortical.npy"
    assert np.array_equal(np.load(a / f), np.load(b / f))
    assert not (a / "subjects/100307/timeseries/bold9_Atlas_MSMAll_Glasser360Cortical.npy").exists()
    assert (a / "subjects/100307/EVs/tfMRI_MOTOR_LR/rh.txt").read_text() == (
        b / "subjects/100307/EVs/tfMRI_MOTOR_LR/rh.txt"
    ).read_text()
    tsv = c / "sub-100307/func/sub-100307_task-rest_dir-LR_run-1_space-fsLR_seg-Glasser_stat-mean_timeseries.tsv"
    assert pd.read_csv(tsv, sep="\t").shape == (40, 360)


def test_fmriprep_writer_is_deterministic(tmp_path):
    kw = dict(participants=1, n_task_runs=1, seed=11, rest_volumes=30, task_volumes=30)
    a = write_fmriprep_dataset(tmp_path / "a", **kw)
    b = write_fmriprep_dataset(tmp_path / "b", **kw, n_jobs=1)
    name = "sub-01/func/sub-01_task-motor_run-1_desc-confounds_timeseries.tsv"
    assert (a / name).read_text() == (b / name).read_text()
    name = f"sub-01/func/sub-01_task-rest_space-{SPACE}_desc-preproc_bold.nii.gz"
    assert np.array_equal(nib.load(a / name).get_fdata(), nib.load(b / name).get_fdata())
    with pytest.raises(ValueError):
        write_fmriprep_dataset(tmp_path / "c", participants=1, confounds_naming="2.0")


def test_command_line(tmp_path, capsys):
    assert demo_main([str(tmp_path / "out"), "--participants", "1", "--seed", "2"]) == 0
    printed = capsys.readouterr().out
    for part in ("bids", "bids/derivatives/fmriprep", "hcp", "hcp_bids"):
        assert str(tmp_path / "out" / part) in printed
        assert (tmp_path / "out" / part).is_dir()
    proc = subprocess.run(
        [sys.executable, "-m", "bidsapp.demo", "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and "OUTDIR" in proc.stdout.upper()
