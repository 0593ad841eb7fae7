"""Ordinary mistakes: one plain line naming the file or option, the contract's exit code, nothing written.

Each case is a real command on a small synthetic dataset (``fmriprep`` fixture), checked for the exit code,
one ``bidsapp: error:`` line per problem naming the file or option (with line and column for parser errors),
and that OUTPUT_DIR holds nothing but ``logs/`` (or nothing at all when it is unusable).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import error_lines

from bidsapp.cli import main


def run(bids_dir: Path, out: Path, level: str, *options: str) -> int:
    return main([str(bids_dir), str(out), level, "--skip-bids-validation", "-w", str(out.parent / "work"),
                 *options])


def written(out: Path) -> set[str]:
    """Top-level entries of OUTPUT_DIR (empty when it does not exist)."""
    return {path.name for path in out.iterdir()} if out.exists() else set()


def test_empty_fmriprep_folder_exit_18_names_it(fmriprep, tmp_path, capsys):
    bids_dir = fmriprep("21+")
    derivatives = bids_dir / "derivatives" / "fmriprep"
    shutil.rmtree(derivatives)
    derivatives.mkdir()
    out = tmp_path / "out"
    assert run(bids_dir, out, "participant") == 18
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1 and str(derivatives) in err[0] and "empty" in err[0] and "--derivatives" in err[0]
    assert "internal error" not in err[0]
    assert written(out) <= {"logs"}


def test_empty_fmriprep_folder_one_line_without_pybids_warning(fmriprep, tmp_path):
    """As a user sees it (a real process, warnings not captured by pytest): the error line and log lines only."""
    bids_dir = fmriprep("21+")
    derivatives = bids_dir / "derivatives" / "fmriprep"
    shutil.rmtree(derivatives)
    derivatives.mkdir()
    result = subprocess.run([sys.executable, "-m", "bidsapp", str(bids_dir), str(tmp_path / "out"), "participant",
                             "--skip-bids-validation", "-w", str(tmp_path / "work")],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 18, result.stderr
    others = [line for line in result.stderr.splitlines() if not re.match(r"\d\d:\d\d:\d\d (INFO|WARNING) ", line)]
    assert len(others) == 1 and others[0].startswith(f"bidsapp: error: {derivatives}: empty"), result.stderr
    assert "Example contents" not in result.stderr and "UserWarning" not in result.stderr
    log = next((tmp_path / "out" / "logs").glob("*.log")).read_text()
    assert "pybids: Derivative indexing was requested, but no valid datasets were found" in log  # folded, kept


def test_fmriprep_folder_without_description_exit_16(fmriprep, tmp_path, capsys):
    bids_dir = fmriprep("21+")
    (bids_dir / "derivatives" / "fmriprep" / "dataset_description.json").unlink()
    out = tmp_path / "out"
    assert run(bids_dir, out, "participant") == 16
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1 and "dataset_description.json" in err[0] and str(bids_dir / "derivatives") in err[0]
    assert written(out) <= {"logs"}


@pytest.mark.parametrize("level", ["participant", "group"])
def test_output_dir_is_a_file_exit_2(fmriprep, tmp_path, capsys, level):
    out = tmp_path / "out"
    out.write_text("not a folder")
    assert run(fmriprep("21+"), out, level) == 2
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1 and f"OUTPUT_DIR {out} is a file" in err[0]
    assert out.read_text() == "not a folder"


def test_output_dir_below_a_file_exit_2(fmriprep, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    out = blocker / "out"
    assert run(fmriprep("21+"), out, "participant", "--dry-run") == 2
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1 and f"OUTPUT_DIR {out}" in err[0] and f"{blocker} is a file" in err[0]


def _unwritable_dir(tmp_path: Path) -> Path:
    """A directory this process cannot write in: mode 0o555, or a system folder when permission bits do not bind."""
    folder = tmp_path / "readonly"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError:
        return folder
    for candidate in (Path("/sys/kernel"), Path("/proc/self")):  # root: permission bits are ignored
        try:
            with tempfile.TemporaryFile(dir=candidate):
                pass
        except OSError:
            return candidate
    pytest.skip("no directory this process cannot write to")


@pytest.mark.parametrize("inside", [False, True])
def test_read_only_output_dir_exit_2(fmriprep, tmp_path, capsys, inside):
    folder = _unwritable_dir(tmp_path)
    out = folder / "out" if inside else folder
    before = sorted(os.listdir(folder))
    try:
        assert run(fmriprep("21+"), out, "participant") == 2
    finally:
        if folder.is_relative_to(tmp_path):
            folder.chmod(0o755)
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1 and f"OUTPUT_DIR {out}" in err[0] and "internal error" not in err[0]
    assert sorted(os.listdir(folder)) == before


_JSON_LINE_2 = '  "nprocs": 2,,'
MALFORMED = {
    "yml": ("nprocs: 2\ntask: [rest\n", "line 3, column 1", "fix the YAML syntax"),
    # JSON stops at the second comma of line 2 (1-based column)
    "json": (f"{{\n{_JSON_LINE_2}\n}}\n", f"line 2, column {_JSON_LINE_2.index(',,') + 2}", "fix the JSON syntax"),
}


@pytest.mark.parametrize("option", ["--config", "--bids-filter-file", "--group-model", "--denoise-strategy"])
@pytest.mark.parametrize("suffix", sorted(MALFORMED))
def test_malformed_option_file_one_line_exit_2(fmriprep, tmp_path, capsys, option, suffix):
    content, where, advice = MALFORMED[suffix]
    path = tmp_path / f"options.{suffix}"
    path.write_text(content)
    out = tmp_path / "out"
    level = "group" if option == "--group-model" else "participant"
    assert run(fmriprep("21+"), out, level, option, str(path)) == 2
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1, err
    assert err[0].startswith(f"bidsapp: error: {option} {path}: {where}: ") and advice in err[0]
    assert not out.exists()


def test_option_file_not_text_exit_2(fmriprep, tmp_path, capsys):
    path = tmp_path / "config.yml"
    path.write_bytes(b"\xff\xfe\x00")
    assert run(fmriprep("21+"), tmp_path / "out", "participant", "--config", str(path)) == 2
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1 and f"--config {path}: not UTF-8" in err[0]


def test_option_file_problems_reported_together(fmriprep, tmp_path, capsys):
    filters, model = tmp_path / "filters.json", tmp_path / "model.yml"
    filters.write_text("{not json")
    model.write_text("columns: [intercept\n")
    out = tmp_path / "out"
    assert run(fmriprep("21+"), out, "group", "--bids-filter-file", str(filters), "--group-model", str(model)) == 2
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 2
    assert str(filters) in err[0] and "line 1, column 2" in err[0]
    assert str(model) in err[1] and "line 2, column 1" in err[1]
    assert not out.exists()


def test_valid_json_config_still_read(fmriprep, tmp_path, capsys):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"task": ["nosuchtask"]}))
    out = tmp_path / "out"
    assert run(fmriprep("21+"), out, "participant", "--config", str(path), "--dry-run") == 18
    assert "nosuchtask" in " ".join(error_lines(capsys.readouterr().err))
