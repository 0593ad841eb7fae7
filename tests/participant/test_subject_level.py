"""The subject level on a study with mixed sessions and unequal runs, against numpy, scipy and nilearn.

The fixture (``mixed_sessions`` in conftest.py): 01-03 with ses-1/ses-2 (02 with one motor run per
session), 04 with ses-1 only, 05 and 06 without sessions (06 with one motor run). The oracles read
the per-run (or per-session) files the pipeline wrote and combine them independently.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from conftest import MIXED_SESSIONS
from scipy import stats

from bidsapp.outputs.relmat import read_relmat

pytestmark = pytest.mark.slow
SPACE = "space-MNI152NLin2009cAsym"


def _subject_file(out: Path, label: str, rest: str) -> Path:
    return out / f"sub-{label}" / "func" / f"sub-{label}_task-motor_{SPACE}_{rest}"


def _runs_by_session(out: Path, label: str, rest: str) -> list[list[Path]]:
    """The per-run files of the motor task, grouped by session (one group for no session)."""
    sessions, n_runs = MIXED_SESSIONS[label]
    groups = []
    for session in sessions or [None]:
        folder = out / f"sub-{label}" / (f"ses-{session}/func" if session else "func")
        prefix = f"sub-{label}_" + (f"ses-{session}_" if session else "") + "task-motor_run-"
        groups.append(sorted(folder.glob(f"{prefix}*_{SPACE}_{rest}")))
        assert len(groups[-1]) == n_runs
    return groups


def _matrix(path: Path) -> np.ndarray:
    return read_relmat(path).to_numpy(dtype=float)


def _oracle(groups: list[list[Path]], read, transform=None, back=None) -> np.ndarray:
    """Equal-weight mean over runs within each session, then over sessions (numpy)."""
    forward = transform or (lambda x: x)
    with np.errstate(divide="ignore"):  # arctanh(1) on the diagonal, left out of the comparison
        means = [np.mean([forward(read(path)) for path in runs], axis=0) for runs in groups]
    combined = np.mean(means, axis=0)
    return back(combined) if back else combined


@pytest.mark.parametrize("label", ["01", "02", "05", "06"])
def test_connectivity_is_mean_fisher_z_over_runs_then_sessions(mixed_sessions, label):
    _, out = mixed_sessions
    r_name = "seg-AICHA_stat-pearsoncorrelation_relmat.tsv"
    expected_r = _oracle(_runs_by_session(out, label, r_name), _matrix, np.arctanh, np.tanh)
    got_r = _matrix(_subject_file(out, label, r_name))
    off = ~np.eye(len(got_r), dtype=bool)
    np.testing.assert_allclose(got_r[off], expected_r[off], rtol=1e-10, atol=1e-12)
    diagonal = np.diag(got_r)
    assert np.all(diagonal[np.isfinite(diagonal)] == 1.0) and np.isfinite(diagonal).sum() > 50
    for rest in ("seg-AICHA_stat-pearsoncorrelation_desc-fisherz_relmat.tsv", "seg-AICHA_stat-covariance_relmat.tsv"):
        expected = _oracle(_runs_by_session(out, label, rest), _matrix)
        np.testing.assert_allclose(_matrix(_subject_file(out, label, rest)), expected, rtol=1e-10, atol=1e-14)
    seed = "roi-pcc_stat-fisherz_statmap.nii.gz"
    groups = _runs_by_session(out, label, seed)
    images = [np.asarray(nib.load(path).dataobj, dtype=float) for runs in groups for path in runs]
    inside = np.logical_and.reduce([image != 0 for image in images])
    got = np.asarray(nib.load(_subject_file(out, label, seed)).dataobj, dtype=float)
    expected = _oracle(groups, lambda path: np.asarray(nib.load(path).dataobj, dtype=float))
    assert inside.sum() > 100 and np.all(got[~inside] == 0)
    np.testing.assert_allclose(got[inside], expected[inside], rtol=1e-5, atol=1e-6)

    sidecar = json.loads(_subject_file(out, label, r_name).with_suffix("").with_suffix(".json").read_text())
    sessions, n_runs = MIXED_SESSIONS[label]
    assert sidecar["Sessions"] == (sessions or [])
    assert len(sidecar["Runs"]) == len(sessions or [None]) * n_runs
    assert sidecar["CombinationLevel"] == "subject" and "Fisher z" in sidecar["CombinationMethod"]
    covariance = json.loads(_subject_file(out, label, "seg-AICHA_stat-covariance_relmat.json").read_text())
    assert "not correlations" in covariance["CombinationMethod"]


def test_per_session_results_only_with_several_sessions(mixed_sessions):
    _, out = mixed_sessions
    name = f"task-motor_{SPACE}_seg-AICHA_stat-pearsoncorrelation_desc-fisherz_relmat.tsv"
    assert (out / "sub-01/ses-1/func" / f"sub-01_ses-1_{name}").is_file()
    assert (out / "sub-01/ses-2/func" / f"sub-01_ses-2_{name}").is_file()
    assert not (out / "sub-04/ses-1/func" / f"sub-04_ses-1_{name}").exists()  # one session: subject level only
    assert (out / "sub-04/func" / f"sub-04_{name}").is_file()
    session = _runs_by_session(out, "01", "seg-AICHA_stat-pearsoncorrelation_desc-fisherz_relmat.tsv")[0]
    np.testing.assert_allclose(_matrix(out / "sub-01/ses-1/func" / f"sub-01_ses-1_{name}"),
                               np.mean([_matrix(path) for path in session], axis=0), rtol=1e-12)
    # one run (06): the subject-level result is a copy of the run's
    run = _runs_by_session(out, "06", "seg-AICHA_stat-pearsoncorrelation_desc-fisherz_relmat.tsv")[0][0]
    np.testing.assert_array_equal(_matrix(out / "sub-06/func" / f"sub-06_{name}"), _matrix(run))


def _session_contrast(out: Path, label: str, session: str, rest: str) -> Path:
    return out / f"sub-{label}/ses-{session}/func/sub-{label}_ses-{session}_task-motor_{SPACE}_{rest}"


@pytest.mark.parametrize("label", ["01", "02"])
def test_contrast_maps_fixed_effects_over_sessions_equal_nilearn(mixed_sessions, label):
    from nilearn.glm.contrasts import compute_fixed_effects

    _, out = mixed_sessions
    effects = [_session_contrast(out, label, s, "contrast-lf_stat-effect_statmap.nii.gz") for s in ("1", "2")]
    variances = [_session_contrast(out, label, s, "contrast-lf_stat-variance_statmap.nii.gz") for s in ("1", "2")]
    dofs = [json.loads(path.with_name(path.name.replace(".nii.gz", ".json")).read_text())["DegreesOfFreedom"]
            for path in effects]
    mask = np.logical_and.reduce([np.asarray(nib.load(path).dataobj) > 0 for path in variances])
    mask_img = nib.Nifti1Image(mask.astype(np.uint8), nib.load(effects[0]).affine)
    effect, variance, t, z = (np.asarray(image.dataobj, dtype=float) for image in compute_fixed_effects(
        effects, variances, mask_img, precision_weighted=False, dofs=dofs))
    got = {stat: np.asarray(nib.load(_subject_file(out, label, f"contrast-lf_stat-{stat}_statmap.nii.gz")).dataobj,
                            dtype=float) for stat in ("effect", "variance", "t", "z", "p")}
    assert mask.sum() > 100 and np.all(got["effect"][~mask] == 0)
    for stat, expected in (("effect", effect), ("variance", variance), ("t", t), ("z", z)):
        np.testing.assert_allclose(got[stat][mask], expected[mask], rtol=2e-5, atol=1e-6, err_msg=stat)
    np.testing.assert_allclose(got["p"][mask], stats.t.sf(t[mask], sum(dofs)), rtol=1e-4, atol=1e-7)
    sidecar = json.loads(_subject_file(out, label, "contrast-lf_stat-t_statmap.json").read_text())
    assert sidecar["DegreesOfFreedom"] == sum(dofs) and sidecar["Sessions"] == ["1", "2"]
    assert len(sidecar["Runs"]) == 2 * MIXED_SESSIONS[label][1]


def test_contrast_tables_fixed_effects_over_sessions_equal_scipy(mixed_sessions):
    _, out = mixed_sessions
    rest = "seg-AICHA_contrast-lfMinusRf_statmap.tsv"
    tables = [pd.read_csv(_session_contrast(out, "01", s, rest), sep="\t", na_values="n/a") for s in ("1", "2")]
    dofs = [json.loads(_session_contrast(out, "01", s, rest.replace(".tsv", ".json")).read_text())["DegreesOfFreedom"]
            for s in ("1", "2")]
    got = pd.read_csv(_subject_file(out, "01", rest), sep="\t", na_values="n/a")
    effect = (tables[0]["effect"] + tables[1]["effect"]) / 2
    variance = (tables[0]["variance"] + tables[1]["variance"]) / 4
    t = effect / np.sqrt(variance)
    valid = t.notna()
    assert valid.sum() > 50 and got.loc[~valid, "t"].isna().all()
    np.testing.assert_allclose(got.loc[valid, "effect"], effect[valid], rtol=1e-12)
    np.testing.assert_allclose(got.loc[valid, "variance"], variance[valid], rtol=1e-12)
    np.testing.assert_allclose(got.loc[valid, "t"], t[valid], rtol=1e-10)
    np.testing.assert_allclose(got.loc[valid, "p"], stats.t.sf(t[valid], sum(dofs)), rtol=1e-8, atol=1e-300)
    assert list(got["name"]) == list(tables[0]["name"])


def test_one_session_is_copied(mixed_sessions):
    _, out = mixed_sessions
    for rest in ("contrast-lf_stat-t_statmap.nii.gz", "contrast-lf_stat-effect_statmap.nii.gz"):
        session = np.asarray(nib.load(_session_contrast(out, "04", "1", rest)).dataobj)
        np.testing.assert_array_equal(np.asarray(nib.load(_subject_file(out, "04", rest)).dataobj), session)
