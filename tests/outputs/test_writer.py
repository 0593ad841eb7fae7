"""Tests for bidsapp.outputs.writer and layout: names, dataset_description, atomic writes, sidecars, re-run skipping."""

from __future__ import annotations

import json
import multiprocessing
import re
import shlex
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from bidsapp.outputs import writer as writer_module
from bidsapp.outputs.layout import BIDSIGNORE, ENTITY_ORDER, build_filename
from bidsapp.outputs.writer import (
    DerivativesWriter,
    OutputDirError,
    parameters_hash,
    sidecar_path,
    to_jsonable,
)

N_PROCESSES = 8
N_ROUNDS = 5


@pytest.fixture
def writer(tmp_path):
    return DerivativesWriter(tmp_path / "out", version="0.1.0", command=["bidsapp", "in", "out", "participant"])


def _temporaries(directory):
    return [p for p in directory.rglob("*") if p.name != ".bidsignore" and (p.name.startswith(".") or ".tmp" in p.name)]


# -- file names ---------------------------------------------------------------------------------
def test_build_filename_orders_entities_and_drops_none():
    entities = {"desc": "clean", "stat": "mean", "run": 1, "task": "rest", "sub": "01",
                "ses": None, "space": "MNI152NLin2009cAsym", "seg": "Glasser", "acq": "mb"}
    assert build_filename(entities, "timeseries", ".tsv") == (
        "sub-01_task-rest_acq-mb_run-1_space-MNI152NLin2009cAsym_seg-Glasser_stat-mean_desc-clean_timeseries.tsv"
    )
    assert ENTITY_ORDER[0] == "sub" and ENTITY_ORDER[-1] == "desc"


def test_build_filename_renders_ints_as_is_and_keeps_string_padding():
    assert build_filename({"sub": "01", "run": 1}, "bold", ".nii.gz") == "sub-01_run-1_bold.nii.gz"
    assert build_filename({"sub": "01", "run": "01"}, "bold", ".nii.gz") == "sub-01_run-01_bold.nii.gz"
    assert build_filename({"sub": "01", "run": np.int64(12)}, "bold", ".nii.gz") == "sub-01_run-12_bold.nii.gz"


def test_build_filename_without_sub_is_allowed_for_group_outputs():
    assert build_filename({"contrast": "lfMinusRf", "stat": "t"}, "statmap", ".nii.gz") == (
        "contrast-lfMinusRf_stat-t_statmap.nii.gz"
    )


def test_build_filename_rejects_unknown_entity():
    with pytest.raises(ValueError, match="'subject'"):
        build_filename({"subject": "01"}, "bold", ".nii.gz")


@pytest.mark.parametrize("value", ["lf-rf", "a_b", "a b", "", "é", -1, True, 1.5])
def test_build_filename_rejects_non_alphanumeric_values(value):
    with pytest.raises(ValueError, match="'contrast'") as info:
        build_filename({"sub": "01", "contrast": value}, "statmap", ".nii.gz")
    assert repr(value) in str(info.value)


@pytest.mark.parametrize(("suffix", "extension"), [("stat_map", ".tsv"), ("", ".tsv"), ("bold", "tsv"), ("bold", ".t_v")])
def test_build_filename_rejects_bad_suffix_or_extension(suffix, extension):
    with pytest.raises(ValueError):
        build_filename({"sub": "01"}, suffix, extension)


def test_participant_and_group_paths(writer):
    out = writer.output_dir
    assert writer.layout.participant_path({"sub": "01", "task": "rest"}, "timeseries", ".tsv") == (
        out / "sub-01" / "func" / "sub-01_task-rest_timeseries.tsv"
    )
    assert writer.layout.participant_path({"sub": "01", "ses": "2"}, "report", ".html", datatype="figures") == (
        out / "sub-01" / "ses-2" / "figures" / "sub-01_ses-2_report.html"
    )
    assert writer.layout.group_path({"contrast": "a", "stat": "z"}, "statmap", ".nii.gz") == (
        out / "group" / "contrast-a_stat-z_statmap.nii.gz"
    )
    with pytest.raises(ValueError, match="'sub'"):
        writer.layout.participant_path({"task": "rest"}, "timeseries", ".tsv")


def test_sidecar_path():
    assert sidecar_path("a/sub-01_bold.nii.gz").name == "sub-01_bold.json"
    assert sidecar_path("sub-01_timeseries.tsv").name == "sub-01_timeseries.json"


# -- dataset_description.json ---------------------------------------------------------------------
def _ensure_many(output_dirs, index, barrier, results):
    """Worker: call ensure_dataset_description on each directory, all processes at once."""
    command = ["bidsapp", "in", "out", "participant", "--participant-label", str(index)]
    for output_dir in output_dirs:
        barrier.wait(timeout=60)
        try:
            DerivativesWriter(output_dir, version="0.1.0", command=command).ensure_dataset_description()
            results.put((index, output_dir, "ok"))
        except BaseException as error:  # report every failure to the parent
            results.put((index, output_dir, repr(error)))


def test_dataset_description_written_once_by_concurrent_processes(tmp_path):
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(N_PROCESSES)
    results = context.Queue()
    output_dirs = [str(tmp_path / f"round{k}" / "out") for k in range(N_ROUNDS)]
    processes = [context.Process(target=_ensure_many, args=(output_dirs, i, barrier, results))
                 for i in range(N_PROCESSES)]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in range(N_PROCESSES * N_ROUNDS)]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    assert [outcome for outcome in outcomes if outcome[2] != "ok"] == []

    commands = {shlex.join(["bidsapp", "in", "out", "participant", "--participant-label", str(i)])
                for i in range(N_PROCESSES)}
    for output_dir in output_dirs:
        files = list((tmp_path / output_dir).iterdir())
        assert sorted(f.name for f in files) == [".bidsignore", "dataset_description.json"]  # no temporaries
        assert (tmp_path / output_dir / ".bidsignore").read_text() == BIDSIGNORE
        description = json.loads((tmp_path / output_dir / "dataset_description.json").read_text())
        assert description["DatasetType"] == "derivative"
        # every distinct command line is appended once, none lost to the race (the lock)
        recorded = [entry["Command"] for entry in description["GeneratedBy"]]
        assert sorted(recorded) == sorted(commands)


def test_dataset_description_content_and_idempotence(writer):
    path = writer.ensure_dataset_description()
    assert path == writer.output_dir / "dataset_description.json"
    first = path.read_text()
    description = json.loads(first)
    assert description["BIDSVersion"] == "1.10.0"
    assert description["DatasetType"] == "derivative"
    generated_by = description["GeneratedBy"][0]
    assert generated_by["Name"] == "bidsapp" and generated_by["Version"] == "0.1.0"
    assert generated_by["Command"] == "bidsapp in out participant"
    assert "CodeURL" not in generated_by

    writer.ensure_dataset_description()
    assert path.read_text() == first  # the same command line is not recorded twice

    other = DerivativesWriter(writer.output_dir, version="0.2.0", command=["bidsapp", "x", "y", "group"])
    other.ensure_dataset_description()
    other.ensure_dataset_description()
    entries = json.loads(path.read_text())["GeneratedBy"]
    assert [(e["Version"], e["Command"]) for e in entries] == [("0.1.0", "bidsapp in out participant"),
                                                               ("0.2.0", "bidsapp x y group")]
    assert _temporaries(writer.output_dir) == []


@pytest.mark.parametrize("content", [
    '{"Name": "raw", "BIDSVersion": "1.10.0", "DatasetType": "raw"}',
    '{"Name": "no type", "BIDSVersion": "1.10.0"}',
    '{"Name": "fmriprep", "DatasetType": "derivative", "GeneratedBy": [{"Name": "fMRIPrep"}]}',
    '{"Name": "half-written", "Datase',
    '[1, 2]',
])
def test_foreign_dataset_description_raises(writer, content):
    writer.output_dir.mkdir(parents=True)
    path = writer.output_dir / "dataset_description.json"
    path.write_text(content)
    with pytest.raises(OutputDirError) as info:
        writer.ensure_dataset_description()
    assert info.value.path == path
    message = str(info.value)
    assert str(path) in message and "OUTPUT_DIR" in message and "\n" not in message
    assert path.read_text() == content


# -- atomicity ---------------------------------------------------------------------------------------
class _FailingTable:
    """A DataFrame stand-in that writes half a file, then fails."""

    def to_csv(self, path, **kwargs):
        with open(path, "w") as stream:
            stream.write("a\tb\n1\t")
        raise RuntimeError("disk full")


def _failing_save(self, path):
    with open(path, "wb") as stream:
        stream.write(b"\x1f\x8b partial")
    raise OSError("disk full")


def test_failed_table_write_leaves_previous_output_untouched(writer):
    path = writer.layout.participant_path({"sub": "01", "stat": "mean"}, "timeseries", ".tsv")
    good = pd.DataFrame({"a": [1.0, 2.0]})
    writer.write_table(path, good, {"RepetitionTime": 2.0}, parameters={"x": 1})
    before = path.read_bytes(), sidecar_path(path).read_bytes()

    with pytest.raises(RuntimeError, match="disk full"):
        writer.write_table(path, _FailingTable(), {}, parameters={"x": 2})
    assert (path.read_bytes(), sidecar_path(path).read_bytes()) == before
    assert writer.is_complete(path, {"x": 1})
    assert _temporaries(writer.output_dir) == []


def test_failed_image_write_leaves_no_file(writer, monkeypatch):
    path = writer.layout.participant_path({"sub": "01", "stat": "z"}, "statmap", ".nii.gz")
    monkeypatch.setattr(writer_module, "save_image", _failing_save)  # the disk fills during the write
    with pytest.raises(OSError, match="disk full"):
        writer.write_image(path, nib.Nifti1Image(np.zeros((2, 2, 2), np.float32), np.eye(4)), {}, parameters={})
    assert list(path.parent.iterdir()) == []


def test_unserialisable_sidecar_fails_before_writing(writer):
    path = writer.layout.participant_path({"sub": "01"}, "timeseries", ".tsv")
    with pytest.raises(TypeError, match="object"):
        writer.write_table(path, pd.DataFrame({"a": [1]}), {"Bad": object()})
    assert not path.exists() and not sidecar_path(path).exists()
    assert _temporaries(writer.output_dir) == []


def test_writes_outside_output_dir_are_refused(writer, tmp_path):
    with pytest.raises(ValueError, match="outside OUTPUT_DIR"):
        writer.write_json(tmp_path / "elsewhere.json", {})
    with pytest.raises(ValueError, match="outside OUTPUT_DIR"):
        writer.write_json(writer.output_dir / ".." / "escape.json", {})


# -- round trips --------------------------------------------------------------------------------------
def test_table_round_trip(writer, tmp_path):
    rng = np.random.default_rng(0)
    table = pd.DataFrame({
        "float32": rng.standard_normal(50).astype(np.float32) * np.float32(1e3),
        "float64": rng.standard_normal(50) / 7,
        "int": np.arange(50),
        "name": [f"r{i}" for i in range(50)],
    })
    table.loc[[3, 17], "float32"] = np.nan
    table.loc[5, "float64"] = np.nan
    path = writer.layout.participant_path({"sub": "01", "stat": "mean"}, "timeseries", ".tsv")
    writer.write_table(path, table, {"RepetitionTime": np.float64(2.0), "CensoredVolumes": np.array([1, 4])},
                       parameters={"fd_threshold": 0.5, "strategy": "simple"}, sources=[tmp_path / "in.nii.gz"])

    text = path.read_text()
    assert text.splitlines()[0] == "float32\tfloat64\tint\tname"
    assert "n/a" in text and "nan" not in text.lower().replace("n/a", "")
    back = pd.read_csv(path, sep="\t", na_values="n/a")
    assert list(back.columns) == list(table.columns)
    np.testing.assert_array_equal(np.isnan(back["float32"]), np.isnan(table["float32"]))
    np.testing.assert_allclose(back["float32"], table["float32"], rtol=1e-7, equal_nan=True)
    assert (back["float32"].astype(np.float32).fillna(0) == table["float32"].fillna(0)).all()  # exact
    np.testing.assert_array_equal(back["float64"], table["float64"])  # exact, NaN in place
    np.testing.assert_array_equal(back["int"], table["int"])
    assert back["name"].tolist() == table["name"].tolist()

    sidecar = json.loads(sidecar_path(path).read_text())
    assert sidecar["RepetitionTime"] == 2.0
    assert sidecar["CensoredVolumes"] == [1, 4]
    assert sidecar["Parameters"] == {"fd_threshold": 0.5, "strategy": "simple"}
    assert sidecar["ParametersHash"] == parameters_hash({"strategy": "simple", "fd_threshold": 0.5})
    assert sidecar["Sources"] == [f"bids:{re.sub('[^A-Za-z0-9]', '', tmp_path.name)}:in.nii.gz"]  # a folder without BIDS
    links = json.loads((writer.output_dir / "dataset_description.json").read_text())["DatasetLinks"]
    assert links == {re.sub("[^A-Za-z0-9]", "", tmp_path.name): tmp_path.as_uri()}
    assert sidecar["GeneratedBy"] == [{"Name": "bidsapp", "Version": "0.1.0"}]
    assert _temporaries(writer.output_dir) == []


def test_image_round_trip(writer):
    data = np.random.default_rng(1).standard_normal((4, 5, 6)).astype(np.float32)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = [-90, -126, -72]
    path = writer.layout.participant_path({"sub": "01", "contrast": "lfMinusRf", "stat": "z"}, "statmap", ".nii.gz")
    writer.write_image(path, nib.Nifti1Image(data, affine), {"Parameters": {"smoothing_fwhm": 6}},
                       sources=["sub-01_bold.nii.gz"])

    with open(path, "rb") as stream:
        assert stream.read(2) == b"\x1f\x8b"  # gzipped, as the extension says
    img = nib.load(path)
    np.testing.assert_array_equal(img.get_fdata(dtype=np.float32), data)
    np.testing.assert_allclose(img.affine, affine)
    sidecar = json.loads(sidecar_path(path).read_text())
    assert sidecar["Parameters"] == {"smoothing_fwhm": 6}
    assert sidecar["ParametersHash"] == parameters_hash({"smoothing_fwhm": 6})
    assert sidecar["Sources"] == [f"bids:{re.sub('[^A-Za-z0-9]', '', Path.cwd().name)}:sub-01_bold.nii.gz"]  # cwd-relative
    assert writer.is_complete(path, {"smoothing_fwhm": 6})
    assert _temporaries(writer.output_dir) == []


def test_text_and_json_writes(writer):
    report = writer.layout.participant_path({"sub": "01"}, "report", ".html", datatype="figures")
    writer.write_text(report, "<html>é</html>")
    assert report.read_text(encoding="utf-8") == "<html>é</html>"
    assert not sidecar_path(report).exists()
    writer.write_text(report, "<html>2</html>", parameters={"a": 1})
    assert writer.is_complete(report, {"a": 1})

    path = writer.layout.group_path({"desc": "summary"}, "stats", ".json")
    writer.write_json(path, {"x": np.float32(0.5), "n": np.int64(3), "nan": float("nan"), "arr": np.eye(2)})
    assert json.loads(path.read_text()) == {"x": 0.5, "n": 3, "nan": None, "arr": [[1.0, 0.0], [0.0, 1.0]]}


def test_parameters_given_twice_is_an_error(writer):
    path = writer.layout.participant_path({"sub": "01"}, "timeseries", ".tsv")
    with pytest.raises(ValueError, match="Parameters"):
        writer.write_table(path, pd.DataFrame({"a": [1]}), {"Parameters": {"a": 1}}, parameters={"a": 1})


def test_to_jsonable():
    value = {"a": np.float32(1.5), "b": np.array([1.0, np.nan]), "c": (np.int8(1), np.bool_(True)),
             "d": float("inf"), 3: None}
    assert to_jsonable(value) == {"a": 1.5, "b": [1.0, None], "c": [1, True], "d": None, "3": None}
    with pytest.raises(TypeError):
        to_jsonable(object())


def test_parameters_hash_is_canonical():
    assert parameters_hash({"a": 1, "b": [1, 2]}) == parameters_hash({"b": (1, 2), "a": np.int64(1)})
    assert parameters_hash({"a": 1}) != parameters_hash({"a": 2})


# -- re-run skipping ----------------------------------------------------------------------------------
def test_is_complete(writer):
    path = writer.layout.participant_path({"sub": "01", "stat": "pearsoncorrelation"}, "relmat", ".tsv")
    parameters = {"atlas": "Schaefer2018", "kind": ["correlation"], "low_pass": 0.08}
    assert not writer.is_complete(path, parameters)
    writer.write_table(path, pd.DataFrame(np.eye(3)), {}, parameters=parameters)
    assert writer.is_complete(path, dict(reversed(list(parameters.items()))))
    assert not writer.is_complete(path, {**parameters, "low_pass": 0.1})

    sidecar = sidecar_path(path)
    saved = sidecar.read_bytes()
    sidecar.unlink()
    assert not writer.is_complete(path, parameters)
    sidecar.write_text("{not json")
    assert not writer.is_complete(path, parameters)
    sidecar.write_bytes(saved)
    assert writer.is_complete(path, parameters)
    path.unlink()
    assert not writer.is_complete(path, parameters)


def test_rewrite_with_new_parameters_replaces_data_and_sidecar(writer):
    path = writer.layout.participant_path({"sub": "01"}, "timeseries", ".tsv")
    writer.write_table(path, pd.DataFrame({"a": [1]}), {}, parameters={"v": 1})
    writer.write_table(path, pd.DataFrame({"a": [2]}), {}, parameters={"v": 2})
    assert pd.read_csv(path, sep="\t")["a"].tolist() == [2]
    assert writer.is_complete(path, {"v": 2}) and not writer.is_complete(path, {"v": 1})
    assert _temporaries(writer.output_dir) == []
