"""The array-level first-level GLM against nilearn's FirstLevelModel and run_glm + compute_contrast."""

from __future__ import annotations

import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nilearn.glm.contrasts import compute_contrast
from nilearn.glm.first_level import FirstLevelModel, mean_scaling, run_glm

from bidsapp.errors import MissingInputError, UsageError
from bidsapp.steps.glm.contrasts import Contrast, contrast_vector, default_contrasts
from bidsapp.steps.glm.design import design_matrix, frame_times
from bidsapp.steps.glm.events import EVENT_COLUMNS, check_events, ev_conditions, read_events
from bidsapp.steps.glm.fit import fit_contrasts
from bidsapp.steps.glm.fixed_effects import fixed_effects

TR = 2.0
N_VOLUMES = 90
SHAPE = (4, 4, 3)


def _events(shift: float) -> pd.DataFrame:
    onsets = np.arange(6.0 + shift, N_VOLUMES * TR - 20, 30.0)
    return pd.DataFrame({"onset": onsets, "duration": 12.0,
                         "trial_type": ["a", "b"] * (len(onsets) // 2) + ["a"] * (len(onsets) % 2),
                         "modulation": 1.0})


def _run(seed: int, events: pd.DataFrame) -> np.ndarray:
    """(T, N) data: baseline 100, AR(1) noise, condition a planted in the first 12 voxels."""
    rng = np.random.default_rng(seed)
    n_units = int(np.prod(SHAPE))
    design = design_matrix(events, N_VOLUMES, TR)
    noise = np.zeros((N_VOLUMES, n_units))
    innovations = rng.normal(size=(N_VOLUMES, n_units))
    for t in range(N_VOLUMES):
        noise[t] = innovations[t] + (0.4 * noise[t - 1] if t else 0)
    effect = np.zeros(n_units)
    effect[:12] = 3.0
    return 100 + noise + np.outer(design["a"], effect) + np.outer(design["b"], 0.3 * effect[::-1])


def _image(data: np.ndarray) -> nib.Nifti1Image:
    return nib.Nifti1Image(data.T.reshape(*SHAPE, -1).astype(np.float32), np.eye(4))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two runs: (data, events, events.tsv path)."""
    root = tmp_path_factory.mktemp("glm")
    out = []
    for k, shift in enumerate((0.0, 4.0)):
        events = _events(shift)
        path = root / f"run{k}_events.tsv"
        events[["onset", "duration", "trial_type"]].to_csv(path, sep="\t", index=False)
        out.append((_run(k, events), read_events(path), path))
    return out


def _nilearn_z(runs, noise_model, expression, sample_masks=None):
    mask = nib.Nifti1Image(np.ones(SHAPE, dtype=np.int8), np.eye(4))
    model = FirstLevelModel(t_r=TR, mask_img=mask, noise_model=noise_model, minimize_memory=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit([_image(data) for data, _, _ in runs], events=[events for _, events, _ in runs],
                  sample_masks=sample_masks)
        z = model.compute_contrast(expression, output_type="z_score")
    return z.get_fdata().reshape(-1)


def _ours(runs, noise_model, contrast, sample_masks=None):
    per_run = []
    for k, (data, events, _) in enumerate(runs):
        design = design_matrix(events, N_VOLUMES, TR)
        mask = None if sample_masks is None else sample_masks[k]
        scaled, _ = mean_scaling(data.astype(np.float32))  # FirstLevelModel's default signal_scaling=0
        per_run.append(fit_contrasts(scaled, design, [contrast], noise_model=noise_model,
                                         sample_mask=mask)[contrast.name])
    return fixed_effects(per_run)


@pytest.mark.parametrize("noise_model", ["ar1", "ols"])
@pytest.mark.parametrize("n_runs", [1, 2])
def test_z_equals_first_level_model(runs, noise_model, n_runs):
    contrast = Contrast("aMinusB", "a - b")
    ours = _ours(runs[:n_runs], noise_model, contrast)
    theirs = _nilearn_z(runs[:n_runs], noise_model, "a - b")
    np.testing.assert_allclose(ours.z, theirs, atol=1e-3)
    assert ours.z[:12].min() > 3  # the planted effect is found


@pytest.mark.parametrize("noise_model", ["ar1", "ols"])
def test_equals_run_glm_and_compute_contrast(runs, noise_model):
    data, events, _ = runs[0]
    design = design_matrix(events, N_VOLUMES, TR)
    contrasts = [Contrast("a", "a"), Contrast("aMinusB", "a - b")]
    fitted = fit_contrasts(data, design, contrasts, noise_model=noise_model)
    labels, results = run_glm(data, design.to_numpy(), noise_model=noise_model)
    for contrast, vector in zip(contrasts, ([1, 0], [1, -1])):
        vector = np.r_[vector, np.zeros(design.shape[1] - 2)]
        reference = compute_contrast(labels, results, vector, stat_type="t")
        maps = fixed_effects([fitted[contrast.name]])
        np.testing.assert_allclose(maps.effect, reference.effect_size(), rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(maps.variance, reference.effect_variance(), rtol=1e-6, atol=1e-12)
        np.testing.assert_allclose(maps.t, reference.stat(), rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(maps.z, reference.z_score(), rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(maps.p, reference.p_value(), rtol=1e-6, atol=1e-12)
        assert maps.dof == reference.dof


def _ar_data(design: pd.DataFrame, coefficients: np.ndarray, seed: int) -> np.ndarray:
    """float32 (T, N) data: baseline 100, AR(1) noise with each unit's coefficient, a random effect of a."""
    rng = np.random.default_rng(seed)
    noise = np.zeros((N_VOLUMES, coefficients.size))
    for t in range(N_VOLUMES):
        noise[t] = rng.normal(size=coefficients.size) + (coefficients * noise[t - 1] if t else 0)
    return (100 + noise + np.outer(design["a"], rng.normal(size=coefficients.size))).astype(np.float32)


@pytest.mark.parametrize("noise_model", ["ar1", "ols"])
@pytest.mark.parametrize("duplicate_column", [False, True])
def test_many_ar_bins_equal_run_glm(runs, noise_model, duplicate_column):
    """Hundreds of units over many AR(1) bins (negative ones too), float32 data, and a rank-deficient design."""
    _, events, _ = runs[0]
    design = design_matrix(events, N_VOLUMES, TR)
    if duplicate_column:
        design.insert(2, "a_copy", design["a"])
    data = _ar_data(design, np.linspace(-0.6, 0.9, 400), seed=7)
    fitted = fit_contrasts(data, design, [Contrast("aMinusB", "a - b")], noise_model=noise_model)["aMinusB"]
    labels, results = run_glm(data, design.to_numpy(), noise_model=noise_model)
    assert noise_model == "ols" or len(results) > 50
    reference = compute_contrast(labels, results, contrast_vector(Contrast("c", "a - b"), design.columns),
                                 stat_type="t")
    np.testing.assert_allclose(fitted.effect_size(), reference.effect_size(), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(fitted.effect_variance(), reference.effect_variance(), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(fitted.z_score(), reference.z_score(), rtol=1e-8, atol=1e-10)
    assert fitted.dof == reference.dof


def test_frame_times_and_design_match_first_level_model(runs):
    data, events, _ = runs[0]
    model = FirstLevelModel(t_r=TR, mask_img=nib.Nifti1Image(np.ones(SHAPE, dtype=np.int8), np.eye(4)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(_image(data), events=events)
    pd.testing.assert_frame_equal(design_matrix(events, N_VOLUMES, TR), model.design_matrices_[0])


@pytest.mark.parametrize("hrf_model", ["glover", "spm"])
@pytest.mark.parametrize("tr", [0.72, 2.0])
def test_condition_regressors_equal_nilearn(hrf_model, tr):
    """The FFT-convolved regressors against nilearn's own: duplicates, zero durations, modulation, edges."""
    from nilearn.glm.first_level import make_first_level_design_matrix

    n_volumes = 120
    events = pd.DataFrame({
        "onset": [-5.0, 0.0, 10.0, 10.0, 30.5, 47.3, 60.0, 60.0, n_volumes * tr - 3.0],
        "duration": [4.0, 2.0, 12.0, 12.0, 0.0, 1.5, 8.0, 0.0, 20.0],
        "trial_type": ["a", "b", "a", "a", "c", "b", "a", "c", "b"],
        "modulation": [1.0, 0.5, 1.0, 2.0, 1.0, -1.0, 3.0, 1.0, 1.0],
    })
    ours = design_matrix(events, n_volumes, tr, hrf_model=hrf_model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nilearn warns about the duplicated event
        theirs = make_first_level_design_matrix(frame_times(n_volumes, tr), events, hrf_model=hrf_model,
                                                drift_model="cosine", high_pass=0.01)
    assert list(ours.columns) == list(theirs.columns)
    np.testing.assert_array_equal(ours.index, theirs.index)
    np.testing.assert_allclose(ours.to_numpy(), theirs.to_numpy(), rtol=0, atol=1e-12)


def test_censored_volumes_never_enter_the_fit(runs):
    data, events, _ = runs[0]
    design = design_matrix(events, N_VOLUMES, TR)
    keep = np.ones(N_VOLUMES, bool)
    keep[[0, 1, 30, 31, 32, 70]] = False
    contrast = Contrast("aMinusB", "a - b")
    censored = fixed_effects([fit_contrasts(data, design, [contrast], sample_mask=keep)["aMinusB"]])
    kept_only = fixed_effects([fit_contrasts(data[keep], design[keep], [contrast])["aMinusB"]])
    np.testing.assert_array_equal(censored.z, kept_only.z)
    assert censored.dof == kept_only.dof == keep.sum() - design.shape[1]
    by_index = fit_contrasts(data, design, [contrast], sample_mask=np.flatnonzero(keep))["aMinusB"]
    np.testing.assert_array_equal(fixed_effects([by_index]).z, censored.z)
    theirs = _nilearn_z(runs[:1], "ar1", "a - b", sample_masks=[np.flatnonzero(keep)])
    np.testing.assert_allclose(censored.z, theirs, atol=1e-3)


def test_default_contrast_names():
    contrasts = default_contrasts(["lf", "rf", "0bk_body", "win_event"])
    assert [c.name for c in contrasts] == [
        "lf", "rf", "winevent", "lfMinusRf", "lfMinusWinevent", "rfMinusLf", "rfMinusWinevent",
        "wineventMinusLf", "wineventMinusRf"]
    assert contrasts[3].expression == "lf - rf"
    assert contrasts[2].expression == "win_event"


def test_contrast_vector_quoted_names_and_errors():
    columns = ["0bk_body", "2bk_body", "lf", "drift_1", "constant"]
    np.testing.assert_array_equal(contrast_vector(Contrast("wm", "`2bk_body` - `0bk_body`"), columns),
                                  [-1, 1, 0, 0, 0])
    np.testing.assert_array_equal(contrast_vector(Contrast("x", "lf - 1e-1*`2bk_body`"), columns),
                                  [0, -0.1, 1, 0, 0])
    with pytest.raises(UsageError, match=r"--contrast lfMinusRf=lf - rf: rf not in .*available: 0bk_body, "
                                         r"2bk_body, lf$"):
        contrast_vector(Contrast("lfMinusRf", "lf - rf"), columns)
    with pytest.raises(UsageError, match=r"--contrast bad=lf -: the expression does not parse"):
        contrast_vector(Contrast("bad", "lf -"), columns)


def test_read_hcp_ev_directory(tmp_path):
    evs = tmp_path / "tfMRI_MOTOR_RL"
    evs.mkdir()
    (evs / "lf.txt").write_text("10\t12\t1\n40.5\t12\t1\n")
    (evs / "rf.txt").write_text("25 12 0.5\n")
    (evs / "t.txt").write_text("")
    (evs / "Sync.txt").write_text("0.0\n")
    events = read_events(evs)
    assert list(events.columns) == list(EVENT_COLUMNS)
    assert events["trial_type"].tolist() == ["lf", "rf", "lf"]
    assert events["modulation"].tolist() == [1, 0.5, 1]
    assert ev_conditions(evs) == ("lf", "rf", "t")
    check_events(events, 60, 0.72, evs)
    with pytest.raises(MissingInputError, match=r"lf\.txt: event 'lf' at onset 40\.5 s starts after the run ends"):
        check_events(events, 50, 0.72, evs)


def test_hcp_ev_directory_order_and_cache_against_pandas(tmp_path):
    evs = tmp_path / "tfMRI_WM_RL"
    evs.mkdir()
    rows = {"b": "5 1 1\n5 2 3\n1 1 1\n", "a": "5 9 2\n7.25 1 1\n", "c": "5 1 4\n"}
    for name, text in rows.items():
        (evs / f"{name}.txt").write_text(text)

    def expected():  # each file by pandas, then pandas' stable sort by onset and name
        tables = [pd.read_csv(evs / f"{name}.txt", sep=" ", header=None, names=["onset", "duration", "modulation"])
                  .assign(trial_type=name) for name in sorted(rows)]
        table = pd.concat(tables).sort_values(["onset", "trial_type"], kind="stable").reset_index(drop=True)
        return table[list(EVENT_COLUMNS)].astype({"onset": float, "duration": float, "modulation": float})

    first = read_events(evs)
    pd.testing.assert_frame_equal(first, expected(), check_dtype=False)
    assert first[["trial_type", "duration"]].values.tolist()[1:4] == [["a", 9], ["b", 1], ["b", 2]]
    first.loc[0, "onset"] = 99.0  # a caller's change does not reach the next read
    assert read_events(evs)["onset"].iloc[0] == 1.0
    rows["c"] = "0.5 1 1\n5 1 4\n"  # a changed file is read again
    (evs / "c.txt").write_text(rows["c"])
    pd.testing.assert_frame_equal(read_events(evs), expected(), check_dtype=False)
    (evs / "a.txt").write_text("bad line\n")
    with pytest.raises(MissingInputError, match=r"a\.txt: cannot be read as an FSL 3-column EV file"):
        read_events(evs)


def test_read_events_tsv_amplitude_and_bad_onset(tmp_path):
    path = tmp_path / "sub-01_task-x_events.tsv"
    path.write_text("onset\tduration\ttrial_type\tamplitude\n5\t2\tgo\t2\n1\t2\tn/a\t1\n300\t2\tstop\t1\n")
    events = read_events(path)
    assert events["trial_type"].tolist() == ["go", "stop"]
    assert events["modulation"].tolist() == [2.0, 1.0]
    with pytest.raises(MissingInputError, match=rf"{path.name}: event 'stop' at onset 300 s"):
        check_events(events, 100, 2.0, path)
    bad = tmp_path / "bad_events.tsv"
    bad.write_text("onset\ttrial_type\n1\tgo\n")
    with pytest.raises(MissingInputError, match="bad_events.tsv: no duration column"):
        read_events(bad)


@pytest.mark.parametrize("noise_model", ["ar1", "ols"])
def test_blocks_and_signal_scaling_equal_one_fit(runs, noise_model):
    """Blocks (units refitted in order of their AR(1) bin) with scaling and censoring equal one fit of scaled data."""
    _, events, _ = runs[0]
    design = design_matrix(events, N_VOLUMES, TR)
    data = _ar_data(design, np.random.default_rng(1).uniform(-0.5, 0.9, 300), seed=3)
    keep = np.r_[2:40, 45:N_VOLUMES]
    contrasts = [Contrast("a", "a"), Contrast("aMinusB", "a - b")]
    blocked = fit_contrasts(data, design, contrasts, noise_model=noise_model, sample_mask=keep,
                                signal_scaling=True, block=70)
    whole = fit_contrasts(mean_scaling(data[keep])[0], design.iloc[keep], contrasts, noise_model=noise_model)
    for name in ("a", "aMinusB"):
        np.testing.assert_allclose(blocked[name].effect, whole[name].effect, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(blocked[name].variance, whole[name].variance, rtol=1e-10, atol=1e-14)
        assert blocked[name].dof == whole[name].dof
