"""The participant level on fMRIPrep derivatives, end to end through ``bidsapp.cli.main``.

Every number is checked against nilearn doing the same analysis the way a user
would (load_confounds, NiftiLabelsMasker, ConnectivityMeasure,
NiftiSpheresMasker + NiftiMasker as in nilearn's seed-to-voxel example,
FirstLevelModel), and the demo's planted effects are recovered.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from conftest import error_lines
from nilearn.connectome import ConnectivityMeasure
from nilearn.glm.contrasts import compute_contrast
from nilearn.glm.first_level import FirstLevelModel, mean_scaling, run_glm
from nilearn.interfaces.fmriprep import load_confounds, load_confounds_strategy
from nilearn.maskers import NiftiLabelsMasker, NiftiMasker, NiftiSpheresMasker
from sklearn.covariance import EmpiricalCovariance

from bidsapp.cli import main
from bidsapp.demo import truth
from bidsapp.demo.grid import mni_grid, sphere_mask
from bidsapp.inputs.atlas import find_atlas_files

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning"),
              pytest.mark.filterwarnings("ignore::RuntimeWarning")]
SPACE = "MNI152NLin2009cAsym"
PCC = (0.0, -52.0, 26.0)
CONTRASTS = {"lf": "lf", "rf": "rf", "lfMinusRf": "lf - rf", "rfMinusLf": "rf - lf"}


def _participant(bids: Path, out: Path, *options: str) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return main([str(bids), str(out), "participant", "--skip-bids-validation", "-w", str(out.parent / "work"),
                     *options])


def _func(bids: Path, sub: str) -> Path:
    return bids / "derivatives" / "fmriprep" / f"sub-{sub}" / "func"


def _bold(bids, sub, task, run=None):
    run = f"_run-{run}" if run else ""
    return _func(bids, sub) / f"sub-{sub}_task-{task}{run}_space-{SPACE}_desc-preproc_bold.nii.gz"


def _mask(bids, sub, task, run=None):
    return Path(str(_bold(bids, sub, task, run)).replace("desc-preproc_bold", "desc-brain_mask"))


def _events(bids, sub, run):
    return pd.read_csv(bids / f"sub-{sub}" / "func" / f"sub-{sub}_task-motor_run-{run:02d}_events.tsv", sep="\t")


def _tsv(path: Path, **kwargs) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", na_values=["n/a"], **kwargs)


def _in_mask(path: Path, mask: Path) -> np.ndarray:
    return nib.load(path).get_fdata()[nib.load(mask).get_fdata() > 0]


@pytest.fixture(scope="module")
def simple(fmriprep_templates, tmp_path_factory):
    """Participant 01 of the small 21+ dataset with the default strategy and a PCC seed."""
    bids = fmriprep_templates["21+"]
    out = tmp_path_factory.mktemp("simple") / "out"
    assert _participant(bids, out, "--participant-label", "01", "--seeds", "PCC=0,-52,26") == 0
    return bids, out / "sub-01" / "func"


@pytest.fixture(scope="module")
def scrubbed(fmriprep_templates, tmp_path_factory):
    """Participant 03 (the most motion) with scrubbing, band-pass 0.01-0.1 Hz and 6 mm smoothing (seed 003)."""
    bids = fmriprep_templates["21+"]
    out = tmp_path_factory.mktemp("scrubbed") / "out"
    assert _participant(bids, out, "--participant-label", "03", "--denoise-strategy", "scrubbing", "--high-pass",
                        "0.01", "--low-pass", "0.1", "--smoothing-fwhm", "6", "--seeds", "PCC=0,-52,26",
                        "--connectivity", "correlation", "partial correlation") == 0
    return bids, out / "sub-03" / "func"


def test_parcel_series_and_correlations_equal_nilearn(simple):
    bids, out = simple
    bold, mask = _bold(bids, "01", "rest"), _mask(bids, "01", "rest")
    confounds, sample_mask = load_confounds_strategy(str(bold), "simple")
    atlas, table, _ = find_atlas_files(None, SPACE)
    masker = NiftiLabelsMasker(str(atlas), mask_img=str(mask), detrend=True, standardize="zscore_sample", t_r=2.0)
    expected = masker.fit_transform(str(bold), confounds=confounds, sample_mask=sample_mask)
    names = dict(pd.read_csv(table).to_numpy())
    columns = [names[masker.region_ids_[i]] for i in range(expected.shape[1])]
    ours = _tsv(out / f"sub-01_task-rest_space-{SPACE}_seg-AICHA_stat-mean_timeseries.tsv")
    assert ours.shape[1] == 384 and len(ours) == len(sample_mask)
    valid = ours[columns].notna().all().to_numpy()
    assert valid.mean() > 0.9 and ours.drop(columns=columns).isna().all().all()
    np.testing.assert_allclose(ours[columns].to_numpy()[:, valid], expected[:, valid], atol=1e-4)
    kept = [c for c, v in zip(columns, valid) if v]
    matrix = ConnectivityMeasure(kind="correlation", cov_estimator=EmpiricalCovariance()).fit_transform(
        [expected[:, valid]])[0]
    relmat = _tsv(out / f"sub-01_task-rest_space-{SPACE}_seg-AICHA_stat-pearsoncorrelation_relmat.tsv", index_col=0)
    np.testing.assert_allclose(relmat.loc[kept, kept].to_numpy(), matrix, atol=1e-4)
    fisher = _tsv(out / f"sub-01_task-rest_space-{SPACE}_seg-AICHA_stat-pearsoncorrelation_desc-fisherz_relmat.tsv",
                  index_col=0)
    np.testing.assert_allclose(fisher.loc[kept[:5], kept[5:10]], np.arctanh(relmat.loc[kept[:5], kept[5:10]]),
                               atol=1e-9)


def test_timeseries_sidecar_records_the_denoising(simple):
    _, out = simple
    sidecar = json.loads((out / f"sub-01_task-rest_space-{SPACE}_seg-AICHA_stat-mean_timeseries.json").read_text())
    assert sidecar["DenoiseStrategy"]["Name"] == "simple" and "Fox" in sidecar["DenoiseStrategy"]["Citation"]
    assert sidecar["CensoredVolumes"] == [0, 1] == sidecar["NonSteadyStateVolumes"]
    regressors = sidecar["ConfoundRegressors"]
    assert len([r for r in regressors if r.startswith(("trans", "rot"))]) == 24
    assert {"csf", "white_matter"} <= set(regressors) and any(r.startswith("cosine") for r in regressors)
    n_kept = truth.REST_VOLUMES - 2
    assert sidecar["NumberOfVolumesKept"] == n_kept
    assert sidecar["DegreesOfFreedomLeft"] == n_kept - len(regressors) - 2
    assert sidecar["Parameters"]["strategy"]["motion"] == "full" and sidecar["Sources"]
    assert len(sidecar["ParcelCoverage"]) == 384 and sidecar["Atlas"]["Name"] == "AICHA"


def _first_level(bids, sub, runs, confounds_kwargs, **model):
    bolds = [str(_bold(bids, sub, "motor", run)) for run in runs]
    confounds, masks = zip(*[load_confounds(b, **confounds_kwargs) for b in bolds])
    flm = FirstLevelModel(t_r=2.0, mask_img=str(_mask(bids, sub, "motor", runs[0])), noise_model="ar1", **model)
    return flm.fit(bolds, events=[_events(bids, sub, run) for run in runs], confounds=list(confounds),
                   sample_masks=list(masks))


def test_glm_equals_firstlevelmodel(simple):
    bids, out = simple
    flm = _first_level(bids, "01", (1, 2), {"strategy": ("motion", "wm_csf"), "motion": "full", "wm_csf": "basic"})
    mask = _mask(bids, "01", "motor", 1)
    for name, expression in CONTRASTS.items():
        maps = flm.compute_contrast(expression, output_type="all")
        for stat, key in (("z", "z_score"), ("effect", "effect_size"), ("t", "stat")):
            ours = _in_mask(out / f"sub-01_task-motor_space-{SPACE}_contrast-{name}_stat-{stat}_statmap.nii.gz", mask)
            expected = maps[key].get_fdata()[nib.load(mask).get_fdata() > 0]
            np.testing.assert_allclose(ours, expected, atol=1e-3, err_msg=f"{name} {stat}")
    sidecar = json.loads((out / f"sub-01_task-motor_space-{SPACE}_contrast-lfMinusRf_stat-z_statmap.json").read_text())
    assert sidecar["Runs"] == ["sub-01_task-motor_run-1", "sub-01_task-motor_run-2"]
    assert sidecar["EffectUnits"] == "percent signal change" and sidecar["DegreesOfFreedom"] > 100


def test_parcel_glm_equals_nilearn_run_glm(simple):
    """The parcel GLM is nilearn's run_glm on the (unclean) parcel means with FirstLevelModel's designs."""
    bids, out = simple
    flm = _first_level(bids, "01", (1, 2), {"strategy": ("motion", "wm_csf"), "motion": "full", "wm_csf": "basic"})
    atlas, table, _ = find_atlas_files(None, SPACE)
    ours = _tsv(out / f"sub-01_task-motor_space-{SPACE}_seg-AICHA_contrast-lfMinusRf_statmap.tsv")
    assert list(ours.columns) == ["name", "effect", "variance", "t", "z", "p"] and len(ours) == 384
    masker = NiftiLabelsMasker(str(atlas), mask_img=str(_mask(bids, "01", "motor", 1)), standardize=None)
    names = dict(pd.read_csv(table).to_numpy())
    per_run = []
    for run, design in zip((1, 2), flm.design_matrices_):
        bold = _bold(bids, "01", "motor", run)
        _, sample_mask = load_confounds(str(bold), strategy=("motion",))
        series = masker.fit_transform(str(bold), sample_mask=sample_mask)
        columns = [names[masker.region_ids_[i]] for i in range(series.shape[1])]
        valid = ours.set_index("name").loc[columns, "z"].notna().to_numpy()
        labels, results = run_glm(mean_scaling(series[:, valid])[0], design.to_numpy())
        vector = np.array([1.0 if c == "lf" else -1.0 if c == "rf" else 0.0 for c in design.columns])
        per_run.append(compute_contrast(labels, results, vector))
    combined = (per_run[0] + per_run[1]) * 0.5
    kept = [c for c, v in zip(columns, valid) if v]
    np.testing.assert_allclose(ours.set_index("name").loc[kept, "z"], np.ravel(combined.z_score()), atol=1e-3)


def _seed_recipe(bold, mask, confounds, sample_mask, **cleaning):
    """nilearn's seed-to-voxel example (seed 003): r of z-scored series as dot product / n."""
    common = {"detrend": True, "standardize": "zscore_sample", "standardize_confounds": True, "t_r": 2.0}
    seed = NiftiSpheresMasker([PCC], radius=8.0, mask_img=str(mask), **common,
                              **{k: v for k, v in cleaning.items() if k != "smoothing_fwhm"})
    brain = NiftiMasker(mask_img=str(mask), **common, **cleaning)
    seed_series = seed.fit_transform(str(bold), confounds=confounds, sample_mask=sample_mask)
    voxels = brain.fit_transform(str(bold), confounds=confounds, sample_mask=sample_mask)
    n = seed_series.shape[0]
    return (voxels.T @ seed_series).ravel() / n, n


def test_seed_maps_equal_the_seed_recipe(simple):
    bids, out = simple
    bold, mask = _bold(bids, "01", "rest"), _mask(bids, "01", "rest")
    confounds, sample_mask = load_confounds_strategy(str(bold), "simple")
    expected, n = _seed_recipe(bold, mask, confounds, sample_mask)
    r = _in_mask(out / f"sub-01_task-rest_space-{SPACE}_roi-PCC_stat-pearsoncorrelation_statmap.nii.gz", mask)
    np.testing.assert_allclose(r * (n - 1) / n, expected, atol=1e-4)  # the recipe's r is scaled by (n - 1) / n
    z = _in_mask(out / f"sub-01_task-rest_space-{SPACE}_roi-PCC_stat-fisherz_statmap.nii.gz", mask)
    np.testing.assert_allclose(z, np.arctanh(np.clip(r, -0.9999999, 0.9999999)), atol=1e-5)


def test_scrubbed_smoothed_band_passed_seed_maps_equal_the_recipe(scrubbed):
    bids, out = scrubbed
    bold, mask = _bold(bids, "03", "rest"), _mask(bids, "03", "rest")
    confounds, sample_mask = load_confounds(str(bold), strategy=("motion", "wm_csf", "scrub"), motion="full",
                                            wm_csf="full", scrub=5, fd_threshold=0.5, std_dvars_threshold=1.5)
    assert sample_mask is not None and len(sample_mask) < truth.REST_VOLUMES - 2
    expected, n = _seed_recipe(bold, mask, confounds, sample_mask, smoothing_fwhm=6.0, high_pass=0.01, low_pass=0.1)
    r = _in_mask(out / f"sub-03_task-rest_space-{SPACE}_roi-PCC_stat-pearsoncorrelation_statmap.nii.gz", mask)
    np.testing.assert_allclose(r * (n - 1) / n, expected, atol=1e-4)
    sidecar = json.loads((out / f"sub-03_task-rest_space-{SPACE}_roi-PCC_stat-pearsoncorrelation_statmap.json")
                         .read_text())
    censored = sorted(set(range(truth.REST_VOLUMES)) - set(sample_mask.tolist()))
    assert sidecar["CensoredVolumes"] == censored and sidecar["SmoothingFWHM"] == 6.0


def test_scrubbed_smoothed_glm_equals_firstlevelmodel(scrubbed):
    bids, out = scrubbed
    flm = _first_level(bids, "03", (1, 2), {"strategy": ("motion", "wm_csf", "scrub"), "motion": "full",
                                           "wm_csf": "full", "scrub": 5, "fd_threshold": 0.5,
                                           "std_dvars_threshold": 1.5}, smoothing_fwhm=6.0, high_pass=0.01)
    mask = _mask(bids, "03", "motor", 1)
    expected = flm.compute_contrast("lf - rf", output_type="z_score").get_fdata()[nib.load(mask).get_fdata() > 0]
    ours = _in_mask(out / f"sub-03_task-motor_space-{SPACE}_contrast-lfMinusRf_stat-z_statmap.nii.gz", mask)
    np.testing.assert_allclose(ours, expected, atol=1e-3)


def test_fmriprep_1_0_naming_gives_the_same_outputs(fmriprep_templates, simple, tmp_path):
    """CamelCase confounds (expansions computed by bidsapp) and 1.0 file names give the 21+ results."""
    _, reference = simple
    out = tmp_path / "out"
    assert _participant(fmriprep_templates["1.0"], out, "--participant-label", "01", "--task", "rest") == 0
    name = f"sub-01_task-rest_space-{SPACE}_seg-AICHA_stat-mean_timeseries.tsv"
    np.testing.assert_allclose(_tsv(out / "sub-01" / "func" / name).to_numpy(), _tsv(reference / name).to_numpy(),
                               atol=1e-4)


def test_rerun_skips_complete_outputs(fmriprep_templates, simple, tmp_path, capsys):
    bids, _ = simple
    out = tmp_path / "out"
    options = ("--participant-label", "01", "--task", "rest")
    assert _participant(bids, out, *options) == 0
    written = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and "logs" not in p.parts}
    capsys.readouterr()
    assert _participant(bids, out, *options) == 0
    assert "sub-01_task-rest: outputs complete, skipped" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in written} == written
    assert _participant(bids, out, *options, "--connectivity", "correlation", "covariance") == 0
    covariance = out / "sub-01" / "func" / f"sub-01_task-rest_space-{SPACE}_seg-AICHA_stat-covariance_relmat.tsv"
    timeseries = out / "sub-01" / "func" / f"sub-01_task-rest_space-{SPACE}_seg-AICHA_stat-mean_timeseries.tsv"
    assert timeseries.stat().st_mtime_ns == written[timeseries]
    series = _tsv(timeseries).dropna(axis=1)
    expected = ConnectivityMeasure(kind="covariance", cov_estimator=EmpiricalCovariance()).fit_transform(
        [series.to_numpy()])[0]
    np.testing.assert_allclose(_tsv(covariance, index_col=0).loc[series.columns, series.columns], expected, atol=1e-6)


def test_partial_correlation_needs_more_volumes_than_parcels(scrubbed):
    _, out = scrubbed
    path = out / f"sub-03_task-rest_space-{SPACE}_seg-AICHA_stat-partialcorrelation_relmat.tsv"
    assert _tsv(path, index_col=0).isna().all().all()
    assert "more kept volumes" in json.loads(path.with_suffix("").with_suffix(".json").read_text())["Warning"]


def test_report(simple):
    _, out = simple
    report = (out.parent.parent / "sub-01.html").read_text()
    for heading in ("sub-01_task-rest", "sub-01_task-motor_run-2", "sub-01_task-motor", "Framewise displacement",
                    "carpet plot", "nuisance regressors", "Connectivity matrix", "Seed maps", "Design matrices",
                    "Contrast z maps"):
        assert heading in report, heading
    # per run: carpet, regressor correlations, connectivity, seed maps; per task run: its design; the z maps
    assert report.count("data:image/png;base64") == 3 * 4 + 2 + 1


def _nodes_atlas(path: Path) -> Path:
    """A label atlas of the demo's planted network nodes (spheres) with their networks."""
    grid = mni_grid(4.0)
    labels = np.zeros(grid.shape, np.int16)
    rows = []
    for network in truth.REST_NETWORKS:
        for node in network.nodes:
            labels[sphere_mask(grid, node.center_mm, truth.NODE_RADIUS_MM)] = len(rows) + 1
            rows.append({"index": len(rows) + 1, "name": node.name, "network": network.name})
    nib.Nifti1Image(labels, grid.affine).to_filename(path)
    pd.DataFrame(rows).to_csv(path.with_name(path.name.replace(".nii.gz", ".tsv")), sep="\t", index=False)
    return path


def test_planted_effects_are_found(demo, tmp_path):
    atlas = _nodes_atlas(tmp_path / f"atlas-Nodes_space-{SPACE}_dseg.nii.gz")
    out = tmp_path / "out"
    assert _participant(demo.bids_dir, out, "--participant-label", "01", "--atlas", str(atlas),
                        "--seeds", "PCC=0,-52,26") == 0
    func = out / "sub-01" / "func"
    z = nib.load(func / f"sub-01_task-motor_space-{SPACE}_contrast-lfMinusRf_stat-z_statmap.nii.gz")
    inverse = np.linalg.inv(z.affine)
    for blob in truth.TASK_BLOBS:
        i, j, k = np.round(inverse[:3, :3] @ blob.center_mm + inverse[:3, 3]).astype(int)
        value = z.get_fdata()[i, j, k]
        sign = truth.LF_MINUS_RF_SIGN[blob.name]
        assert (value > 3.1 if sign > 0 else value < -3.1 if sign < 0 else abs(value) < 3.1), (blob.name, value)
    networks = _tsv(func / f"sub-01_task-rest_space-{SPACE}_seg-Nodes_stat-pearsoncorrelation_desc-networks_relmat.tsv",
                    index_col=0)
    within = np.diag(networks.to_numpy())
    between = networks.to_numpy()[~np.eye(len(networks), dtype=bool)]
    assert within.min() > 0.3 and within.min() > between.max() + 0.2, networks
    parcels = _tsv(func / f"sub-01_task-motor_space-{SPACE}_seg-Nodes_contrast-lfMinusRf_statmap.tsv")
    assert list(parcels.columns) == ["name", "network", "effect", "variance", "t", "z", "p"]
    by_name = parcels.set_index("name")["z"]
    assert by_name["rM1"] > 2 and by_name["lM1"] < -2 and abs(by_name["V1"]) < 2
    r = nib.load(func / f"sub-01_task-rest_space-{SPACE}_roi-PCC_stat-pearsoncorrelation_statmap.nii.gz").get_fdata()
    grid = mni_grid(4.0)
    mean_r = {node.name: r[sphere_mask(grid, node.center_mm, 4.0)].mean() for net in truth.REST_NETWORKS
              for node in net.nodes}
    assert mean_r["mPFC"] > 0.3 and mean_r["mPFC"] > mean_r["V1"] + 0.2


# ---------------------------------------------------------------------------------------------------------
# Bad input: one line naming the file or option, the contract's exit code, nothing half-written
# ---------------------------------------------------------------------------------------------------------

def _fails(bids: Path, out: Path, capsys, code: int, *needles: str, options=()) -> None:
    capsys.readouterr()
    assert _participant(bids, out, "--participant-label", "01", *options) == code
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1, lines
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    leftovers = [p.name for p in out.rglob("*") if p.is_file() and "logs" not in p.parts
                 and p.name not in ("dataset_description.json", ".bidsignore") and "_desc-summary_qc." not in p.name]
    assert not leftovers, leftovers


def test_confounds_missing_a_column(fmriprep, tmp_path, capsys):
    bids = fmriprep("21+")
    path = _func(bids, "01") / "sub-01_task-rest_desc-confounds_timeseries.tsv"
    _tsv(path).drop(columns="white_matter").to_csv(path, sep="\t", index=False, na_rep="n/a")
    _fails(bids, tmp_path / "out", capsys, 66, path.name, "'white_matter'", "fMRIPrep >= 20.2")


def test_nan_in_the_bold(fmriprep, tmp_path, capsys):
    bids = fmriprep("21+")
    bold = _bold(bids, "01", "rest")
    image = nib.load(bold)
    data = image.get_fdata(dtype=np.float32)
    mask = nib.load(_mask(bids, "01", "rest")).get_fdata() > 0
    data[np.argwhere(mask)[10][0], np.argwhere(mask)[10][1], np.argwhere(mask)[10][2], 7] = np.nan
    nib.Nifti1Image(data, image.affine, image.header).to_filename(bold)
    _fails(bids, tmp_path / "out", capsys, 66, bold.name, "NaN or infinite values", "volume 7")


def test_truncated_bold(fmriprep, tmp_path, capsys):
    """A BOLD file cut short (its header intact) stops the participant when read, naming the file."""
    bids = fmriprep("21+")
    bold = _bold(bids, "01", "rest")
    bold.write_bytes(bold.read_bytes()[:bold.stat().st_size * 2 // 3])
    _fails(bids, tmp_path / "out", capsys, 66, bold.name, "cannot be read as a 4-D NIfTI image")


def test_mask_off_the_bold_grid(fmriprep, tmp_path, capsys):
    bids = fmriprep("21+")
    path = _mask(bids, "01", "rest")
    image = nib.load(path)
    affine = image.affine.copy()
    affine[0, 3] += 4.0
    nib.Nifti1Image(np.asarray(image.dataobj), affine).to_filename(path)
    _fails(bids, tmp_path / "out", capsys, 66, path.name, "does not match the BOLD grid")


def test_atlas_in_another_space_or_with_missing_labels(fmriprep, tmp_path, capsys):
    bids = fmriprep("21+")
    atlas = _nodes_atlas(tmp_path / "atlas-Nodes_space-MNI152NLin6Asym_dseg.nii.gz")
    _fails(bids, tmp_path / "out", capsys, 2, "--atlas", "space MNI152NLin6Asym", options=("--atlas", str(atlas)))
    atlas = _nodes_atlas(tmp_path / "atlas-Nodes_dseg.nii.gz")
    table = atlas.with_name("atlas-Nodes_dseg.tsv")
    _tsv(table).iloc[:-1].to_csv(table, sep="\t", index=False)
    _fails(bids, tmp_path / "out2", capsys, 66, "atlas-Nodes_dseg.tsv", "labels 10", options=("--atlas", str(atlas)))


def test_contrast_problems(fmriprep, tmp_path, capsys):
    bids = fmriprep("21+")
    _fails(bids, tmp_path / "o1", capsys, 2, "--contrast bad=lf - xx", "conditions available",
           options=("--contrast", "bad=lf - xx"))
    _fails(bids, tmp_path / "o2", capsys, 2, "--contrast odd=lf +* rf", "does not parse",
           options=("--contrast", "odd=lf +* rf"))


def test_events_after_the_end_of_the_run(fmriprep, tmp_path, capsys):
    bids = fmriprep("21+")
    path = bids / "sub-01" / "func" / "sub-01_task-motor_run-01_events.tsv"
    events = _tsv(path)
    events.loc[len(events)] = [500.0, 10.0, "lf"]
    events.to_csv(path, sep="\t", index=False)
    _fails(bids, tmp_path / "out", capsys, 66, path.name, "starts after the run ends")


def test_seed_outside_the_brain(fmriprep, tmp_path, capsys):
    _fails(fmriprep("21+"), tmp_path / "out", capsys, 2, "--seeds Sky=0,0,150", "no voxel inside the brain mask",
           options=("--seeds", "Sky=0,0,150"))


def test_all_volumes_censored(fmriprep, tmp_path, capsys):
    """Every run of the participant is censored whole: the preflight lists each run's confounds file."""
    out = tmp_path / "out"
    capsys.readouterr()
    assert _participant(fmriprep("21+"), out, "--participant-label", "01", "--denoise-strategy", "scrubbing",
                        "--fd-threshold", "0.000001") == 66
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 3, lines
    for line, run in zip(lines, ("task-motor_run-1", "task-motor_run-2", "task-rest"), strict=True):
        for needle in (f"sub-01_{run}_desc-confounds_timeseries.tsv", "volumes are censored"):
            assert needle in line, (needle, line)
    assert [p.name for p in out.iterdir()] == ["logs"]


def test_unknown_strategy_and_atlas(fmriprep, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TEMPLATEFLOW_HOME", str(tmp_path / "templateflow"))
    bids = fmriprep("21+")
    _fails(bids, tmp_path / "o1", capsys, 2, "--denoise-strategy 'gentle'", "simple",
           options=("--denoise-strategy", "gentle"))
    _fails(bids, tmp_path / "o2", capsys, 66, "Schaefer2018_100Parcels7Networks", "not found",
           options=("--atlas", "Schaefer2018_100Parcels7Networks"))
