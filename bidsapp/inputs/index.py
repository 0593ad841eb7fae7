"""A pybids index of the input, cached in the work directory.

Indexing a large tree and checking every run's files are the slow parts of
discovery, so the SQLite index pybids builds, and the results of the run checks,
are kept under ``WORK_DIR/pybids/`` and reused while the tree is unchanged:
same files, sizes and modification times.

A dry run writes nothing, in the work directory either: it reuses a current
cache but builds a missing one in memory only (``write_cache=False``). It is
often run elsewhere than the real run (a login node, whose ``TMPDIR`` and so
default work directory differ from a compute node's), where a cache would not
be found again, and a user who asks what a run would do expects no file to appear.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import shutil
import tempfile
import warnings
from pathlib import Path

from bidsapp.errors import InvalidDatasetError

LOGGER = logging.getLogger(__name__)


def tree_fingerprint(roots: list[Path]) -> str:
    """Hash of the path, size and modification time of every file under ``roots``."""
    digest = hashlib.sha256()
    for root in roots:
        for directory, subdirs, files in os.walk(root):
            subdirs.sort()
            for name in sorted(files):
                stat = os.stat(os.path.join(directory, name))
                digest.update(f"{directory}/{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def load_layout(raw: Path | None, derivatives: list[Path], work_dir: Path, *, write_cache: bool = True):
    """Index a raw dataset and its derivatives (or derivatives alone) with pybids.

    Parameters
    ----------
    raw : Path, optional
        Raw BIDS dataset; ``None`` when the input is a derivatives dataset alone.
    derivatives : list of Path
        Derivative datasets (fMRIPrep outputs).
    work_dir : Path
        Where the cached index lives.
    write_cache : bool, default True
        Cache a new index; ``False`` (a dry run) reuses a current cache but writes none.

    Returns
    -------
    layout : bids.BIDSLayout
    cache : Path or None
        The cache directory, current for this tree; ``None`` when the index is in memory only.
    """
    from bids import __version__ as pybids_version

    roots = ([raw] if raw else []) + list(derivatives)
    key = hashlib.sha256("\0".join(map(str, roots)).encode()).hexdigest()[:16]
    cache = work_dir / "pybids" / key
    fingerprint = f"{pybids_version}\n{tree_fingerprint(roots)}"
    if _is_current(cache, fingerprint):
        LOGGER.info("Reusing the dataset index cached in %s", cache)
        return _layout(raw, derivatives, cache), cache
    if not write_cache:
        LOGGER.info("Indexing %s in memory (a dry run writes no cache; the real run caches the index in %s)",
                    ", ".join(map(str, roots)), cache)
        return _layout(raw, derivatives, None), None

    LOGGER.info("Indexing %s; the index is cached in %s", ", ".join(map(str, roots)), cache)
    cache.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=cache.parent))
    _layout(raw, derivatives, building / "db")
    (building / "db" / "fingerprint.txt").write_text(fingerprint)
    stale = cache.parent / f".{key}.stale.{os.getpid()}"
    # Several jobs (a scheduler's array) may index at once: a current index another job installed meanwhile
    # is kept, and only an out-of-date one is moved aside.
    if cache.exists() and not _is_current(cache, fingerprint):
        os.rename(cache, stale)
    try:
        os.rename(building / "db", cache)
    except OSError:
        LOGGER.debug("Another process cached the index first")
    shutil.rmtree(building, ignore_errors=True)
    shutil.rmtree(stale, ignore_errors=True)
    return _layout(raw, derivatives, cache), cache


def _is_current(cache: Path, fingerprint: str) -> bool:
    """Whether ``cache`` holds an index of the tree with this ``fingerprint``."""
    stamp = cache / "fingerprint.txt"
    try:
        return stamp.read_text() == fingerprint
    except OSError:
        return False


def load_checked_runs(cache: Path | None) -> dict:
    """Run-check results cached with the index: data path to ``Run`` or ``RunProblem`` (none without a cache)."""
    if cache is None:
        return {}
    path = cache / "runs.pickle"
    if not path.is_file():
        return {}
    try:
        return pickle.loads(path.read_bytes())
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
        return {}


def save_checked_runs(cache: Path | None, checked: dict) -> None:
    """Store run-check results beside the index (atomically; a lost race is harmless); nothing without a cache."""
    if cache is None:
        return
    tmp = cache / f".runs.{os.getpid()}.tmp"
    tmp.write_bytes(pickle.dumps({**load_checked_runs(cache), **checked}))
    os.replace(tmp, cache / "runs.pickle")


def _layout(raw: Path | None, derivatives: list[Path], database_path: Path | None):
    """Index with pybids; its warnings, which span several lines, go to the log as one line each.

    pybids warns, for instance, about a derivatives folder without a valid dataset (with an
    example ``dataset_description.json`` over three lines); discovery then says what is wrong
    with that folder in one line of its own, so the console shows only that line.
    """
    from bids import BIDSLayout, BIDSLayoutIndexer
    from bids.exceptions import PyBIDSError

    indexer = BIDSLayoutIndexer(validate=False, index_metadata=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if raw is None:
                layout = BIDSLayout(derivatives[0], validate=False, is_derivative=True,
                                    config=["bids", "derivatives"], indexer=indexer, database_path=database_path)
                for extra in derivatives[1:]:
                    layout.add_derivatives(extra, validate=False, indexer=indexer)
            else:
                layout = BIDSLayout(raw, validate=False, derivatives=derivatives, indexer=indexer,
                                    database_path=database_path)
        except (PyBIDSError, ValueError) as error:
            raise InvalidDatasetError(f"{raw or derivatives[0]}: cannot be indexed as BIDS ({error})") from error
        finally:
            for warning in caught:
                LOGGER.debug("pybids: %s", " ".join(str(warning.message).split()))
    return layout
