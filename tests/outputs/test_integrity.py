"""Outputs that cannot be damaged silently: sidecar checksums, and no temporary left on any exit path.

The recorded size and SHA-256 are checked against ``os.stat`` and ``hashlib`` on the
file's bytes; the exit paths are real processes killed or signalled mid-write.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import signal

import pandas as pd
import pytest

from bidsapp.interruption import raise_on_signals
from bidsapp.outputs.atomic import remove_stale_temporaries, temporary_path
from bidsapp.outputs.writer import CHECKSUM_KEY, SIZE_KEY, DerivativesWriter, sidecar_path

ENTITIES = {"sub": "01", "task": "rest", "stat": "mean"}


@pytest.fixture
def writer(tmp_path):
    return DerivativesWriter(tmp_path / "out", version="0.1.0", command=["bidsapp", "in", "out", "participant"])


def _hidden(directory):
    return sorted(p.name for p in directory.rglob(".*") if p.name != ".bidsignore")


def _table_path(writer):
    return writer.layout.participant_path(ENTITIES, "timeseries", ".tsv")


def _write(writer, values=(1.0, 2.5, 3.25)):
    path = _table_path(writer)
    writer.write_table(path, pd.DataFrame({"a": list(values), "b": ["x", "y", "z"][:len(values)]}), {},
                       parameters={"v": 1})
    return path


# -- checksums ----------------------------------------------------------------------------------------
def test_sidecar_records_size_and_sha256_of_the_data_file(writer):
    path = _write(writer)
    sidecar = json.loads(sidecar_path(path).read_text())
    data = path.read_bytes()
    assert sidecar[SIZE_KEY] == len(data) == os.stat(path).st_size
    assert sidecar[CHECKSUM_KEY] == hashlib.sha256(data).hexdigest()


def test_image_and_text_sidecars_record_their_checksum(writer):
    import nibabel as nib
    import numpy as np

    image = writer.layout.participant_path({"sub": "01", "stat": "z"}, "statmap", ".nii.gz")
    writer.write_image(image, nib.Nifti1Image(np.arange(24, dtype=np.float32).reshape(2, 3, 4), np.eye(4)), {},
                       parameters={"v": 1})
    report = writer.layout.participant_path({"sub": "01"}, "report", ".html", datatype="figures")
    writer.write_text(report, "<html>é</html>", parameters={"v": 1})
    encoded = writer.layout.participant_path({"sub": "01", "stat": "x"}, "relmat", ".tsv")
    writer.write_text(encoded, "node\tR\u00e9gion\n".encode(), parameters={"v": 1})  # bytes: hashed in memory
    assert encoded.read_text(encoding="utf-8") == "node\tRégion\n"
    for path in (image, report, encoded):
        sidecar = json.loads(sidecar_path(path).read_text())
        assert sidecar[CHECKSUM_KEY] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert sidecar[SIZE_KEY] == path.stat().st_size
        assert writer.is_complete(path, {"v": 1})


def test_a_caller_cannot_set_the_checksum(writer):
    path = _table_path(writer)
    writer.write_table(path, pd.DataFrame({"a": [1]}), {SIZE_KEY: 1, CHECKSUM_KEY: "0" * 64}, parameters={})
    sidecar = json.loads(sidecar_path(path).read_text())
    assert sidecar[CHECKSUM_KEY] == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("damage", ["truncate", "same size", "empty", "sidecar without checksum"])
def test_damaged_output_is_incomplete_and_named(writer, damage, caplog):
    path = _write(writer)
    assert writer.is_complete(path, {"v": 1})
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "same size":
        path.write_bytes(data.replace(b"2.5", b"2.6"))
        assert path.stat().st_size == len(data)
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        sidecar = json.loads(sidecar_path(path).read_text())
        del sidecar[SIZE_KEY], sidecar[CHECKSUM_KEY]
        sidecar_path(path).write_text(json.dumps(sidecar))
    with caplog.at_level(logging.WARNING, logger="bidsapp"):
        assert not writer.is_complete(path, {"v": 1})
    assert any(str(path) in record.getMessage() and "sidecar" in record.getMessage() for record in caplog.records)

    _write(writer)  # what a re-run does with an incomplete output
    assert path.read_bytes() == data
    assert writer.is_complete(path, {"v": 1})


def test_other_parameters_are_incomplete_without_a_warning(writer, caplog):
    path = _write(writer)
    with caplog.at_level(logging.WARNING, logger="bidsapp"):
        assert not writer.is_complete(path, {"v": 2})
    assert caplog.records == []


# -- temporaries on every exit path -------------------------------------------------------------------
class _KillsItself:
    """A DataFrame stand-in that writes half a file, then kills its own process with ``signum``."""

    def __init__(self, signum):
        self.signum = signum

    def to_csv(self, path, **kwargs):
        with open(path, "w") as stream:
            stream.write("a\tb\n1\t")
        os.kill(os.getpid(), self.signum)


def _write_and_die(output_dir, signum, handle_signals):
    """Child process: write one table and receive ``signum`` halfway (with or without bidsapp's handlers)."""
    if handle_signals:
        raise_on_signals()
    writer = DerivativesWriter(output_dir, version="0.1.0", command=["bidsapp"])
    try:
        writer.write_table(_table_path(writer), _KillsItself(signum), {}, parameters={})
    except KeyboardInterrupt as interruption:
        os._exit(interruption.exit_code)


def _run_child(output_dir, signum, handle_signals):
    process = multiprocessing.get_context("spawn").Process(target=_write_and_die,
                                                           args=(output_dir, signum, handle_signals))
    process.start()
    process.join(timeout=120)
    return process.exitcode


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_during_a_write_removes_the_temporary(writer, signum, code):
    assert _run_child(writer.output_dir, signum, True) == code
    assert list(writer.output_dir.rglob("*")) == [_table_path(writer).parent.parent, _table_path(writer).parent]


def test_temporaries_of_a_killed_writer_are_removed_by_the_next_run(writer):
    assert _run_child(writer.output_dir, signal.SIGKILL, False) == -signal.SIGKILL
    leftovers = _hidden(writer.output_dir)
    assert len(leftovers) == 1 and ".tmp.tsv" in leftovers[0]  # kill -9: nothing can remove it then

    live = temporary_path(writer.output_dir / "sub-01" / "func" / "sub-01_live_timeseries.tsv")  # our own write
    other_host = live.with_name(".sub-01_x_timeseries.1@another-host.0123abcd.tmp.tsv")
    other_host.touch()
    writer.ensure_dataset_description()
    assert _hidden(writer.output_dir) == sorted([live.name, other_host.name])
    assert not _table_path(writer).exists()

    assert remove_stale_temporaries(writer.output_dir, gone={os.getpid()}) == [live]
    assert _hidden(writer.output_dir) == [other_host.name]
