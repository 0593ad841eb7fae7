"""Denoising strategies and confound selection, against nilearn's load_confounds on real fMRIPrep files."""

from __future__ import annotations

import shutil
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from nilearn.interfaces.fmriprep import load_confounds, load_confounds_strategy
from nilearn.interfaces.fmriprep.load_confounds_scrub import optimize_scrub
from nilearn.signal import clean as nilearn_clean

from bidsapp.errors import MissingInputError, UsageError
from bidsapp.steps import denoise, strategies

NILEARN_DATA = Path(load_confounds.__code__.co_filename).parent / "data"
#: nilearn's real confounds files: (file stem in nilearn's data, our name's suffix).
VERSIONS = {"21+": ("test-v21_desc-confounds_timeseries", "desc-confounds_timeseries"),
            "1.4": ("test_desc-confounds_regressors", "desc-confounds_regressors")}
#: Each preset and the nilearn call that selects the same regressors (dummy scans as nilearn: auto).
NILEARN_EQUIVALENT = {
    "simple": lambda img: load_confounds_strategy(img, "simple"),
    "simple+gsr": lambda img: load_confounds_strategy(img, "simple", global_signal="basic"),
    "scrubbing": lambda img: load_confounds_strategy(img, "scrubbing"),
    "scrubbing+gsr": lambda img: load_confounds_strategy(img, "scrubbing", global_signal="full"),
    "acompcor": lambda img: load_confounds_strategy(img, "compcor"),
    "yeo2011": lambda img: load_confounds(img, strategy=("motion", "wm_csf", "global_signal"), motion="derivatives",
                                          wm_csf="derivatives", global_signal="derivatives"),
    "24P": lambda img: load_confounds(img, strategy=("motion",), motion="full"),
    "36P": lambda img: load_confounds(img, strategy=("motion", "wm_csf", "global_signal"), motion="full",
                                      wm_csf="full", global_signal="full"),
    "none": lambda img: (None, load_confounds(img, strategy=("motion",))[1]),
}


@pytest.fixture(scope="module")
def real_confounds(tmp_path_factory):
    """nilearn's fMRIPrep confounds files beside a (placeholder) preprocessed image, per naming."""
    root = tmp_path_factory.mktemp("nilearn_confounds")
    images = {}
    for version, (stem, suffix) in VERSIONS.items():
        folder = root / version.replace(".", "_").replace("+", "plus")
        folder.mkdir()
        for extension in (".tsv", ".json"):
            shutil.copy(NILEARN_DATA / f"{stem}{extension}", folder / f"sub-01_task-rest_{suffix}{extension}")
        image = folder / "sub-01_task-rest_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz"
        image.touch()
        images[version] = image
    return images


def _ours(image: Path, strategy: strategies.Strategy) -> denoise.Denoising:
    tsv = next(image.parent.glob("*_desc-confounds_*.tsv"))
    metadata = pd.read_json(tsv.with_suffix(".json"), typ="series").to_dict()
    return denoise.select_confounds(pd.read_csv(tsv, sep="\t", na_values=["n/a"]), metadata, strategy, path=tsv)


def test_presets_have_citation_and_methods():
    names = strategies.preset_names()
    assert set(NILEARN_EQUIVALENT) == set(names)
    for name in names:
        strategy = strategies.load_strategy(name)
        assert strategy.name == name and strategy.citation and strategy.methods and strategy.description


@pytest.mark.parametrize("version", sorted(VERSIONS))
@pytest.mark.parametrize("name", sorted(NILEARN_EQUIVALENT))
def test_selection_equals_nilearn(real_confounds, version, name):
    image = real_confounds[version]
    strategy = strategies.with_options(strategies.load_strategy(name), dummy_scans="auto")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected, expected_mask = NILEARN_EQUIVALENT[name](str(image))
    if expected_mask is not None and expected_mask.size == 0:  # nilearn warns, bidsapp refuses
        with pytest.raises(MissingInputError, match="volumes are censored"):
            _ours(image, strategy)
        return
    ours = _ours(image, strategy)
    n = ours.n_volumes
    np.testing.assert_array_equal(ours.sample_mask, np.arange(n) if expected_mask is None else expected_mask)
    if expected is None:
        assert ours.confounds.shape[1] == 0
        return
    assert sorted(ours.confounds.columns) == sorted(expected.columns)
    np.testing.assert_allclose(ours.confounds[expected.columns].to_numpy(), expected.to_numpy(), atol=1e-10)


def test_acompcor_top_components_from_a_user_file(real_confounds, tmp_path):
    path = tmp_path / "top5.yml"
    path.write_text("extends: acompcor\nconfounds:\n  n_compcor: 5\n")
    strategy = strategies.load_strategy(str(path))
    assert strategy.name == "top5" and strategy.n_compcor == 5 and strategy.motion == "full"
    for version, image in real_confounds.items():
        expected, _ = load_confounds_strategy(str(image), "compcor", n_compcor=5)
        assert sorted(_ours(image, strategy).confounds.columns) == sorted(expected.columns), version


def test_yeo2011_is_the_seed_recipe():
    strategy = strategies.load_strategy("yeo2011")
    assert (strategy.high_pass_hz, strategy.low_pass_hz, strategy.dummy_scans) == (0.009, 0.08, 4)
    assert strategy.detrend and strategy.standardize == "zscore_sample" and not strategy.cosine


def test_camelcase_tables_select_the_same_regressors(fmriprep_templates):
    """fMRIPrep 1.0 CamelCase tables (no expansions) give the 21+ selection of the same simulated run."""
    def table(kind, pattern):
        path = next((fmriprep_templates[kind] / "derivatives" / "fmriprep" / "sub-01" / "func").glob(pattern))
        return pd.read_csv(path, sep="\t", na_values=["n/a"]), path

    camel, camel_path = table("1.0", "*task-rest_bold_confounds.tsv")
    snake, snake_path = table("21+", "*task-rest_desc-confounds_timeseries.tsv")
    for name in ("simple", "scrubbing", "yeo2011", "24P", "36P"):
        strategy = strategies.load_strategy(name)
        ours = denoise.select_confounds(camel, None, strategy, path=camel_path)
        theirs = denoise.select_confounds(snake, None, strategy, path=snake_path)
        assert sorted(ours.confounds.columns) == sorted(theirs.confounds.columns), name
        # the simulator squares float32 signals (~1e6 for power2 of a mean signal): compare relative to each column
        scale = theirs.confounds.abs().max().to_numpy() + 1e-12
        np.testing.assert_allclose(ours.confounds[theirs.confounds.columns] / scale, theirs.confounds / scale,
                                   atol=1e-6)
        np.testing.assert_array_equal(ours.sample_mask, theirs.sample_mask)
    acompcor = denoise.select_confounds(camel, None, strategies.load_strategy("acompcor"), path=camel_path)
    assert [c for c in acompcor.confounds if "comp_cor" in c] == [f"a_comp_cor_{i:02d}" for i in range(6)]


def test_missing_column_names_column_and_version(real_confounds):
    image = real_confounds["1.4"]
    tsv = next(image.parent.glob("*.tsv"))
    table = pd.read_csv(tsv, sep="\t", na_values=["n/a"]).drop(columns="white_matter")
    with pytest.raises(MissingInputError, match=r"white_matter.*'simple'.*fMRIPrep 1\.2-20\.1") as error:
        denoise.select_confounds(table, None, strategies.load_strategy("simple"), path=tsv)
    assert str(tsv) in str(error.value) and "WhiteMatter" in str(error.value)


def test_anatomical_compcor_needs_the_json(real_confounds):
    tsv = next(real_confounds["21+"].parent.glob("*.tsv"))
    table = pd.read_csv(tsv, sep="\t", na_values=["n/a"])
    separated = replace(strategies.load_strategy("acompcor"), compcor="anat_separated")
    with pytest.raises(MissingInputError, match="JSON sidecar"):
        denoise.select_confounds(table, None, separated, path=tsv)


def test_all_volumes_censored_is_an_error(real_confounds):
    tsv = next(real_confounds["21+"].parent.glob("*.tsv"))
    table = pd.read_csv(tsv, sep="\t", na_values=["n/a"])
    strategy = strategies.with_options(strategies.load_strategy("scrubbing"), fd_threshold_mm=1e-6)
    with pytest.raises(MissingInputError, match=r"all \d+ volumes are censored"):
        denoise.select_confounds(table, None, strategy, path=tsv)


def test_dummy_scans_and_first_row_filled(real_confounds):
    tsv = next(real_confounds["21+"].parent.glob("*.tsv"))
    table = pd.read_csv(tsv, sep="\t", na_values=["n/a"])
    strategy = strategies.with_options(strategies.load_strategy("yeo2011"))
    ours = denoise.select_confounds(table, None, strategy, path=tsv)
    assert ours.dummy == (0, 1, 2, 3) and ours.sample_mask[0] == 4
    assert not ours.confounds.isna().any(axis=None)
    derivative = table["trans_x_derivative1"]
    np.testing.assert_allclose(ours.confounds["trans_x_derivative1"][0] - ours.confounds["trans_x_derivative1"][1],
                               0.0, atol=1e-12)  # row 0 takes row 1's value, then demeaning shifts both alike
    assert np.isnan(derivative[0])


@pytest.mark.parametrize("seed", range(6))
def test_scrub_segments_equal_nilearn(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 60))
    outliers = np.sort(rng.choice(n, size=int(rng.integers(1, 8)), replace=False))
    for min_segment in (0, 3, 5):
        expected = optimize_scrub(outliers.copy(), n, min_segment) if min_segment else outliers
        np.testing.assert_array_equal(denoise.scrub_segments(outliers, n, min_segment), expected)


@pytest.mark.parametrize("name", ["simple", "yeo2011", "scrubbing", "none"])
def test_cleaning_matrix_is_nilearn_clean(name):
    rng = np.random.default_rng(1)
    n = 80
    table = pd.DataFrame({"trans_x": rng.normal(size=n), "csf": rng.normal(size=n), "white_matter": rng.normal(size=n),
                          "cosine00": np.cos(np.pi * (np.arange(n) + 0.5) / n),
                          "framewise_displacement": np.r_[np.nan, rng.gamma(1.0, 0.1, n - 1)],
                          "std_dvars": np.r_[np.nan, rng.normal(1, 0.2, n - 1)], "global_signal": rng.normal(size=n)})
    for column in ("trans_y", "trans_z", "rot_x", "rot_y", "rot_z"):
        table[column] = rng.normal(size=n)
    table.loc[[30, 31], "framewise_displacement"] = 2.0
    strategy = strategies.with_options(strategies.load_strategy(name), dummy_scans=2)
    denoising = denoise.select_confounds(table, None, strategy, path="sub-01_desc-confounds_timeseries.tsv")
    signals = rng.normal(size=(n, 7)).cumsum(axis=0) + 100
    cleaner = denoise.cleaning_matrix(strategy, denoising, 2.0)
    parameters = denoise.clean_parameters(strategy, denoising, 2.0)
    expected = nilearn_clean(signals, standardize=None, **parameters)
    np.testing.assert_allclose(cleaner @ signals, expected, atol=1e-8)


def test_degrees_of_freedom_count_regressors_trend_and_filter():
    n = 100
    table = pd.DataFrame({c: np.random.default_rng(0).normal(size=n) for c in
                          ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")})
    strategy = strategies.with_options(strategies.load_strategy("24P"), dummy_scans=0)
    denoising = denoise.select_confounds(table, None, strategy, path="x_desc-confounds_timeseries.tsv")
    # 24 regressors, 2 for the trend; band 0.01-0.08 Hz of 100 x 2 s keeps frequencies k/200 for k = 2..16
    assert denoise.degrees_of_freedom(strategy, denoising, 2.0) == 100 - 24 - 2 - (2 * 50 - 1 - 2 * 15)
    record = denoise.denoising_record(strategy, denoising, 2.0)
    assert record["NumberOfVolumesKept"] == 100 and len(record["ConfoundRegressors"]) == 24
    assert "MinimumVolumesAfterScrubbing" not in record  # 24P does not scrub


def test_strategy_file_errors(tmp_path):
    with pytest.raises(UsageError, match="unknown strategy"):
        strategies.load_strategy("nonsense")
    with pytest.raises(MissingInputError, match="file not found"):
        strategies.load_strategy(str(tmp_path / "missing.yml"))
    path = tmp_path / "bad.yml"
    path.write_text("confounds:\n  motion: all\n")
    with pytest.raises(UsageError, match="motion"):
        strategies.load_strategy(str(path))
    path.write_text("extends: simple\nfilter: yes\n")
    with pytest.raises(UsageError, match="unknown key 'filter'"):
        strategies.load_strategy(str(path))


def test_command_line_overrides():
    strategy = strategies.with_options(strategies.load_strategy("scrubbing"), high_pass_hz=0.01, low_pass_hz=0.1,
                                       fd_threshold_mm=0.3, dummy_scans=3)
    assert not strategy.cosine and (strategy.high_pass_hz, strategy.low_pass_hz) == (0.01, 0.1)
    assert strategy.scrub.fd_threshold_mm == 0.3 and strategy.dummy_scans == 3
