"""pybids' answers about the input, and the run checks, cached in the work directory.

pybids indexes the input (in memory: ``validate=False``, no metadata index, and
only the files discovery asks about: the folders bidsapp never reads, such as
``anat/`` and ``figures/``, and the files no query asks for are left out by the
indexer's ignore rules). Its answers to discovery's queries are cached in
``WORK_DIR/index/<roots>/files.pickle`` and reused while the same file names are
present, so a cached discovery lists names and stats files, and imports neither
pybids nor SQLAlchemy. A run's checks are cached in
``runs-sub-<label>.pickle`` (one file per participant, so the tasks of a
scheduler's array each write their own) with the path, size and modification
time of every file they read; a file changed since is checked again. Every cache
file is written to a temporary name and renamed into place, so concurrent jobs
never read half a file; when two write the same one, the last complete one wins.

A dry run writes nothing, in the work directory either: it reuses a current
cache but keeps what it computes in memory (``write=False``). It is often run
elsewhere than the real run (a login node, whose ``TMPDIR`` and so default work
directory differ from a compute node's), where a cache would not be found again,
and a user who asks what a run would do expects no file to appear.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import re
import tempfile
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bidsapp.errors import InvalidDatasetError

LOGGER = logging.getLogger(__name__)

#: Bumped when what the cache files hold changes.
_FORMAT = 1
#: Folders no discovery query looks into; neither indexed by pybids nor listed for the cache's validity.
_PRUNED_FOLDERS = ("anat", "dwi", "fmap", "perf", "figures", "log", "logs", "xfm")
#: Folders pybids itself leaves out at a dataset's top level; ``derivatives/`` too (indexed as datasets of their own).
_TOP_LEVEL_IGNORED = ("code", "models", "sourcedata", "stimuli")
#: pybids ignore rules, matched against ``/`` + the path relative to the dataset: pybids' own top-level
#: folders, the pruned folders, and every file (a name with an extension) other than the ones queried:
#: preprocessed BOLD images, events tables, BOLD sidecars without ``desc``/``space`` (inheritance), and
#: ``dataset_description.json``.
_IGNORED = (
    re.compile(rf"^/(?:{'|'.join(_TOP_LEVEL_IGNORED)})(?:/|$)"),
    re.compile(rf"/(?:{'|'.join(_PRUNED_FOLDERS)})$"),
    re.compile(r"/(?!(?:[^/]*_desc-preproc_bold\.nii(?:\.gz)?|[^/]*_events\.tsv|(?:(?!_desc-|_space-)[^/])*_bold\.json"
               r"|dataset_description\.json)$)[^/]*\.[^/]*$"),
)

Query = Mapping[str, Any]


@dataclass(frozen=True)
class FileIndex:
    """pybids' answers to discovery's queries, and where their cache lives.

    Attributes
    ----------
    found : mapping
        Query name to the file paths pybids returned, sorted.
    folder : Path
        The cache folder of these roots.
    write : bool
        Whether caches may be written there (not in a dry run).
    """

    found: Mapping[str, tuple[str, ...]]
    folder: Path
    write: bool


def list_names(roots: Iterable[Path]) -> str:
    """Digest of the path of every file pybids could index under ``roots`` (an unreadable folder lists nothing)."""
    digest = hashlib.sha256()
    for root in roots:
        digest.update(f"{root}\0".encode())
        pending = [(str(root), True)]
        while pending:
            directory, top = pending.pop()
            try:
                with os.scandir(directory) as entries:
                    names = sorted((entry.name, entry.is_dir()) for entry in entries if entry.name[0] != ".")
            except OSError:
                continue
            for name, is_dir in names:
                if not is_dir:
                    digest.update(f"{directory}/{name}\n".encode())
                elif name not in _PRUNED_FOLDERS and not (top and name in (*_TOP_LEVEL_IGNORED, "derivatives")):
                    pending.append((f"{directory}/{name}", False))
    return digest.hexdigest()


def query_index(raw: Path | None, derivatives: list[Path], work_dir: Path, queries: Mapping[str, Query], *,
                write: bool = True) -> FileIndex:
    """Answer ``queries`` with pybids (``layout.get(return_type="filename", **query)``), or from the cache.

    Parameters
    ----------
    raw : Path, optional
        Raw BIDS dataset; ``None`` when the input is a derivatives dataset alone.
    derivatives : list of Path
        Derivative datasets (fMRIPrep outputs).
    work_dir : Path
        Where the cache lives.
    queries : mapping
        Name to ``BIDSLayout.get`` filters.
    write : bool, default True
        Cache new answers; ``False`` (a dry run) reuses a current cache but writes none.

    Returns
    -------
    FileIndex
    """
    roots = ([raw] if raw else []) + list(derivatives)
    folder = work_dir / "index" / hashlib.sha256("\0".join(map(str, roots)).encode()).hexdigest()[:16]
    stamp = (_FORMAT, version("pybids"), repr(sorted((k, sorted(q.items())) for k, q in queries.items())),
             list_names(roots))
    cached = _read(folder / "files.pickle")
    if isinstance(cached, tuple) and len(cached) == 2 and cached[0] == stamp:
        LOGGER.info("Reusing the dataset index cached in %s", folder)
        return FileIndex(found=cached[1], folder=folder, write=write)
    LOGGER.info("Indexing %s with pybids%s", ", ".join(map(str, roots)),
                f"; the index is cached in {folder}" if write else
                f" in memory (a dry run writes no cache; the real run caches the index in {folder})")
    layout = _layout(raw, derivatives)
    found = {name: tuple(sorted(layout.get(return_type="filename", invalid_filters="allow", **query)))
             for name, query in queries.items()}
    if write:
        write_atomically(folder / "files.pickle", (stamp, found))
    return FileIndex(found=found, folder=folder, write=write)


def write_atomically(path: Path, value: object) -> None:
    """Pickle ``value`` to a temporary file beside ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            pickle.dump(value, stream, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _read(path: Path) -> object:
    """A cache file's value; ``None`` when it is missing or unreadable (it is then rebuilt)."""
    try:
        return pickle.loads(path.read_bytes())
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError, ValueError):
        return None


def file_stamps(paths: Sequence[Path]) -> tuple[tuple[str, int, int], ...]:
    """Path, size and modification time (ns) of each file; ``-1, -1`` for a missing one."""
    stamps = []
    for path in paths:
        try:
            stat = os.stat(path)
            stamps.append((str(path), stat.st_size, stat.st_mtime_ns))
        except OSError:
            stamps.append((str(path), -1, -1))
    return tuple(stamps)


@dataclass
class RunChecks:
    """Cached run checks of each participant: data path to the files' stamps and the check's result.

    Attributes
    ----------
    folder : Path
        The cache folder (:attr:`FileIndex.folder`).
    write : bool
        Whether new results are written there (``False``: kept in memory, a dry run).
    """

    folder: Path
    write: bool
    _loaded: dict[str, dict] = field(default_factory=dict)
    _changed: set[str] = field(default_factory=set)

    def get(self, participant: str, data: Path, stamps: tuple) -> object | None:
        """The cached result of checking ``data`` when its files still have these ``stamps``, else ``None``."""
        entry = self._participant(participant).get(str(data))
        return entry[1] if entry is not None and entry[0] == stamps else None

    def put(self, participant: str, data: Path, stamps: tuple, result: object) -> None:
        """Remember a check's result with the stamps of the files it read."""
        self._participant(participant)[str(data)] = (stamps, result)
        self._changed.add(participant)

    def save(self) -> None:
        """Write the participants whose checks changed (nothing in a dry run)."""
        if self.write:
            for participant in sorted(self._changed):
                write_atomically(self._path(participant), (_FORMAT, self._loaded[participant]))
        self._changed.clear()

    def _participant(self, participant: str) -> dict:
        if participant not in self._loaded:
            cached = _read(self._path(participant))
            ok = isinstance(cached, tuple) and len(cached) == 2 and cached[0] == _FORMAT
            self._loaded[participant] = cached[1] if ok else {}  # type: ignore[index]
        return self._loaded[participant]

    def _path(self, participant: str) -> Path:
        return self.folder / f"runs-sub-{participant}.pickle"


def _layout(raw: Path | None, derivatives: list[Path]):
    """Index with pybids in memory; its warnings, which span several lines, go to the log as one line each.

    pybids warns, for instance, about a derivatives folder without a valid dataset (with an
    example ``dataset_description.json`` over three lines); discovery then says what is wrong
    with that folder in one line of its own, so the console shows only that line.
    """
    from bids import BIDSLayout, BIDSLayoutIndexer
    from bids.exceptions import PyBIDSError

    indexer = BIDSLayoutIndexer(validate=False, index_metadata=False, ignore=list(_IGNORED))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if raw is None:
                layout = BIDSLayout(derivatives[0], validate=False, is_derivative=True,
                                    config=["bids", "derivatives"], indexer=indexer)
                for extra in derivatives[1:]:
                    layout.add_derivatives(extra, validate=False, indexer=indexer)
            else:
                layout = BIDSLayout(raw, validate=False, derivatives=derivatives, indexer=indexer)
        except (PyBIDSError, ValueError) as error:
            raise InvalidDatasetError(f"{raw or derivatives[0]}: cannot be indexed as BIDS ({error})") from error
        finally:
            for warning in caught:
                LOGGER.debug("pybids: %s", " ".join(str(warning.message).split()))
    return layout
