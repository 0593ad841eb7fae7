"""Clean interruption and damaged outputs, end to end: ``bidsapp ... participant --nprocs 2`` as a real process.

A run is signalled once its first outputs appear. It must exit 143 (SIGTERM) or
130 (SIGINT) with one line saying what was finished, leave no worker process
and no temporary file, and a re-run must end with the outputs of an
uninterrupted run (the same names, the same TSV bytes). A truncated output is
rewritten by a re-run, and nothing else is.
"""

from __future__ import annotations

import json

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import error_lines

from bidsapp.demo import write_fmriprep_dataset
from bidsapp.interruption import descendants, process_running, stop_processes

pytestmark = pytest.mark.slow
PARTICIPANTS = ["01", "02", "03", "04", "05", "06"]


def _command(bids: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "bidsapp", str(bids), str(out), "participant", "--skip-bids-validation",
            "--nprocs", "2", "-w", str(out.parent / f"work_{out.name}")]


def _run(bids: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run(_command(bids, out), capture_output=True, text=True, timeout=900)


def _outputs(out: Path) -> dict[str, Path]:
    """Every file bidsapp wrote, by its path in OUTPUT_DIR (the logs left out: their names hold the time)."""
    return {str(path.relative_to(out)): path for path in sorted(out.rglob("*"))
            if path.is_file() and path.relative_to(out).parts[0] != "logs"}


def _temporaries(out: Path) -> list[str]:
    return [str(path) for path in out.rglob("*") if ".tmp" in path.name
            or (path.name.startswith(".") and path.name != ".bidsignore")]


def _children(pid: int) -> set[int]:
    """The process ids whose parent is ``pid`` (from /proc; psutil is not installed)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if parent == pid:
                found.add(int(entry.name))
    return found


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Six small fMRIPrep participants (rest and two motor runs each), and an uninterrupted run's outputs."""
    root = tmp_path_factory.mktemp("interruption")
    bids = root / "bids"
    write_fmriprep_dataset(bids, participants=PARTICIPANTS, confounds_naming="21+", n_task_runs=2,
                           resolution_mm=8.0, seed=1)
    reference = root / "reference"
    result = _run(bids, reference)
    assert result.returncode == 0, result.stderr
    return bids, reference


def _interrupt(bids: Path, out: Path, signum: int, *, group: bool) -> tuple[int, str, set[int]]:
    """Start a run, signal it once its first outputs appear; return its exit code, stderr and the workers seen."""
    process = subprocess.Popen(_command(bids, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    workers: set[int] = set()
    try:
        while not any(out.glob("sub-*/func/*_timeseries.tsv")):
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            workers |= _children(process.pid)
            time.sleep(0.02)
        workers |= _children(process.pid)
        if group:  # Ctrl-C in a terminal signals the whole process group
            os.killpg(process.pid, signum)
        else:  # a scheduler's time limit
            process.send_signal(signum)
        _, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    return process.returncode, stderr, workers


def _check_stopped(out: Path, reference: Path, code: int, stderr: str, workers: set[int], name: str) -> None:
    lines = error_lines(stderr)
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"bidsapp: interrupted ({name}): ")
    assert f"of {len(PARTICIPANTS)} participants finished; completed outputs are kept; a re-run does the rest" \
        in lines[0]
    assert code == {"SIGTERM": 143, "SIGINT": 130}[name]
    assert len(workers) >= 2  # --nprocs 2 ran in worker processes ...
    assert [pid for pid in workers if _exists(pid)] == []  # ... and none of them is left
    assert _temporaries(out) == []
    assert set(_outputs(out)) < set(_outputs(reference))  # it was stopped mid-run


def test_sigterm_stops_every_worker_and_a_rerun_completes(dataset, tmp_path):
    bids, reference = dataset
    out = tmp_path / "out"
    code, stderr, workers = _interrupt(bids, out, signal.SIGTERM, group=False)
    _check_stopped(out, reference, code, stderr, workers, "SIGTERM")

    result = _run(bids, out)
    assert result.returncode == 0, result.stderr
    assert "complete, skipped" in result.stderr  # what was finished is not redone
    expected, found = _outputs(reference), _outputs(out)
    assert list(found) == list(expected)
    for name, path in expected.items():
        if name.endswith(".tsv"):
            assert found[name].read_bytes() == path.read_bytes(), name


def test_sigint_to_the_process_group_stops_every_worker(dataset, tmp_path):
    bids, reference = dataset
    out = tmp_path / "out"
    code, stderr, workers = _interrupt(bids, out, signal.SIGINT, group=True)
    _check_stopped(out, reference, code, stderr, workers, "SIGINT")
    assert "Traceback" not in stderr


def test_rerun_rewrites_a_truncated_output_and_only_it(dataset, tmp_path):
    bids, reference = dataset
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    victim = next(path for name, path in _outputs(out).items() if name.endswith("_relmat.tsv"))
    good = victim.read_bytes()
    victim.write_bytes(good[: len(good) // 2])
    before = {name: (path.stat().st_ino, path.stat().st_mtime_ns) for name, path in _outputs(out).items()}

    result = _run(bids, out)
    assert result.returncode == 0, result.stderr
    assert f"{victim} does not match its sidecar" in result.stderr
    assert victim.read_bytes() == good
    after = {name: (path.stat().st_ino, path.stat().st_mtime_ns) for name, path in _outputs(out).items()}
    rewritten = sorted(name for name in before if after[name] != before[name])
    victim_name = str(victim.relative_to(out))
    report = f"{victim_name.split('/')[0]}.html"  # the participant's report shows the rewritten matrix
    # the copy's command line names another OUTPUT_DIR, so it is appended to GeneratedBy (once per command line)
    assert rewritten == sorted([victim_name, victim_name.replace(".tsv", ".json"), report, "dataset_description.json"])
    commands = [entry["Command"] for entry in json.loads((out / "dataset_description.json").read_text())["GeneratedBy"]]
    assert len(commands) == 2 and str(out) in commands[1]


def test_stop_processes_stops_a_process_tree_and_leaves_resource_trackers(tmp_path):
    sleeper = ("import subprocess, sys, time; "
               "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)")
    ignorer = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
               "print('ready', flush=True); time.sleep(60)")
    parent = subprocess.Popen([sys.executable, "-c", sleeper])
    tracker = subprocess.Popen([sys.executable, "-c", ignorer], stdout=subprocess.PIPE, text=True)
    try:
        assert tracker.stdout is not None and tracker.stdout.readline() == "ready\n"
        while not descendants(parent.pid):
            time.sleep(0.02)
        tree = [parent.pid, *descendants(parent.pid)]
        assert len(tree) == 2 and set(tree) <= set(descendants())
        assert stop_processes([*tree, tracker.pid]) == []
        assert parent.wait(timeout=60) == -signal.SIGTERM
        assert [pid for pid in tree if process_running(pid)] == []
        assert tracker.poll() is None  # it ignores SIGTERM: it ends by itself when its parent has gone
    finally:
        for process in (parent, tracker):
            process.kill()
            process.wait()


def _worker(pid: int) -> int | None:
    """A worker process of bidsapp ``pid``: a child that runs bidsapp too (forked; not a resource tracker)."""
    for child in sorted(_children(pid)):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(b"bidsapp" in part for part in command):
            return child
    return None


def test_a_worker_killed_alone_exit_137_names_the_run_and_a_rerun_completes(dataset, tmp_path):
    """The kernel's out-of-memory killer ends one worker with SIGKILL: one line naming the run, exit 137."""
    bids, reference = dataset
    out = tmp_path / "out"
    process = subprocess.Popen(_command(bids, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        victim = None
        while victim is None or not any(out.glob("sub-*/func/*_timeseries.tsv")):
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            victim = victim or _worker(process.pid)
            time.sleep(0.02)
        workers = _children(process.pid)
        os.kill(victim, signal.SIGKILL)
        _, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 137, stderr
    lines = error_lines(stderr)
    assert len(lines) == 1, stderr
    assert _names_a_run(lines[0]) and "a worker process was killed (SIGKILL), most likely by the system for lack of " \
        "memory" in lines[0] and "fewer --nprocs (this run used 2)" in lines[0] and "outputs are kept" in lines[0]
    assert "internal error" not in stderr and "Traceback" not in stderr
    assert [pid for pid in workers if _exists(pid)] == []
    assert _temporaries(out) == []

    result = _run(bids, out)
    assert result.returncode == 0, result.stderr
    expected, found = _outputs(reference), _outputs(out)
    assert list(found) == list(expected)
    for name, path in expected.items():
        if name.endswith(".tsv"):
            assert found[name].read_bytes() == path.read_bytes(), name


def _names_a_run(line: str) -> bool:
    """The line starts with a run of the dataset (``sub-0N_task-...``), the one the killed worker was on."""
    match = re.match(r"bidsapp: error: (sub-(\d\d)_task-(rest|motor)(_run-\d)?): ", line)
    return match is not None and match[2] in PARTICIPANTS
