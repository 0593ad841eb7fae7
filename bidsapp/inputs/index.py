"""A pybids index of the input, cached in the work directory.

Indexing a large tree and checking every run's files are the slow parts of
discovery, so the SQLite index pybids builds, and the results of the run checks,
are kept under ``WORK_DIR/pybids/`` and reused while the tree is unchanged:
same files, sizes and modification times.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import shutil
import tempfile
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


def load_layout(raw: Path | None, derivatives: list[Path], work_dir: Path):
    """Index a raw dataset and its derivatives (or derivatives alone) with pybids.

    Parameters
    ----------
    raw : Path, optional
        Raw BIDS dataset; ``None`` when the input is a derivatives dataset alone.
    derivatives : list of Path
        Derivative datasets (fMRIPrep outputs).
    work_dir : Path
        Where the cached index lives.

    Returns
    -------
    layout : bids.BIDSLayout
    cache : Path
        The cache directory, current for this tree.
    """
    from bids import __version__ as pybids_version

    roots = ([raw] if raw else []) + list(derivatives)
    key = hashlib.sha256("\0".join(map(str, roots)).encode()).hexdigest()[:16]
    cache = work_dir / "pybids" / key
    fingerprint = f"{pybids_version}\n{tree_fingerprint(roots)}"
    if _is_current(cache, fingerprint):
        LOGGER.info("Reusing the dataset index cached in %s", cache)
        return _layout(raw, derivatives, cache), cache

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


def load_checked_runs(cache: Path) -> dict:
    """Run-check results cached with the index: data path to ``Run`` or ``RunProblem``."""
    path = cache / "runs.pickle"
    if not path.is_file():
        return {}
    try:
        return pickle.loads(path.read_bytes())
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
        return {}


def save_checked_runs(cache: Path, checked: dict) -> None:
    """Store run-check results beside the index (atomically; a lost race is harmless)."""
    tmp = cache / f".runs.{os.getpid()}.tmp"
    tmp.write_bytes(pickle.dumps({**load_checked_runs(cache), **checked}))
    os.replace(tmp, cache / "runs.pickle")


def _layout(raw: Path | None, derivatives: list[Path], database_path: Path | None):
    from bids import BIDSLayout, BIDSLayoutIndexer
    from bids.exceptions import PyBIDSError

    indexer = BIDSLayoutIndexer(validate=False, index_metadata=False)
    try:
        if raw is None:
            layout = BIDSLayout(derivatives[0], validate=False, is_derivative=True,
                                config=["bids", "derivatives"], indexer=indexer, database_path=database_path)
            for extra in derivatives[1:]:
                layout.add_derivatives(extra, validate=False, indexer=indexer)
            return layout
        return BIDSLayout(raw, validate=False, derivatives=derivatives, indexer=indexer,
                          database_path=database_path)
    except (PyBIDSError, ValueError) as error:
        raise InvalidDatasetError(f"{raw or derivatives[0]}: cannot be indexed as BIDS ({error})") from error
