"""Provenance: input files as BIDS URIs, and the datasets they come from in ``dataset_description.json``.

A sidecar's ``Sources`` name each input as ``bids:<dataset>:<path in the dataset>``
(``bids::<path>`` for a file of OUTPUT_DIR itself, e.g. a participant-level map
a group output was computed from). Each ``<dataset>`` is a key of
``DatasetLinks`` in OUTPUT_DIR's ``dataset_description.json``, whose value is
the dataset's ``file://`` URI, and is listed in ``SourceDatasets``. A file's
dataset is the nearest folder above it with a ``dataset_description.json``
(named ``raw`` for a raw BIDS dataset, else after its folder, e.g.
``fmriprep``); a file outside any BIDS dataset (a user's atlas) has its folder
as its dataset.

Several bidsapp processes may write into one OUTPUT_DIR at once (one job per
participant), so ``dataset_description.json`` is changed under an exclusive
lock (:func:`locked`) and replaced atomically.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

DescriptionChange = Callable[[dict[str, Any]], bool]
"""Changes a ``dataset_description.json`` content in place; returns whether it changed anything."""


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``directory`` (``flock`` on the folder itself: no lock file is left behind).

    Where the file system has no such locks (some network file systems), the block runs
    unlocked: the file it changes is still replaced atomically, so readers never see a partial
    file, but two processes changing it at the same instant may lose one change.
    """
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # releases the lock


def add_generated_by(entry: dict[str, str]) -> DescriptionChange:
    """A change appending ``entry`` to ``GeneratedBy`` unless an entry has the same ``Command``."""
    def change(description: dict[str, Any]) -> bool:
        entries = description.setdefault("GeneratedBy", [])
        if any(isinstance(item, dict) and item.get("Command") == entry["Command"] for item in entries):
            return False
        entries.append(entry)
        return True

    return change


def dataset_root(path: Path) -> Path:
    """The BIDS dataset holding ``path``: the nearest folder above it with a ``dataset_description.json``.

    ``path``'s own folder when there is none.
    """
    for folder in path.parents:
        if (folder / "dataset_description.json").is_file():
            return folder
    return path.parent


def dataset_name(root: Path) -> str:
    """The name a dataset is linked under: ``raw`` for raw BIDS, else its folder's name (letters and digits)."""
    try:
        description = json.loads((root / "dataset_description.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        description = None
    if isinstance(description, dict) and description.get("DatasetType", "raw") == "raw":
        return "raw"
    return re.sub(r"[^A-Za-z0-9]", "", root.name) or "dataset"


def source_dataset(root: Path) -> dict[str, str]:
    """A ``SourceDatasets`` entry: the dataset's URL, with its DOI and version when its description has them."""
    entry = {"URL": root.as_uri()}
    try:
        description = json.loads((root / "dataset_description.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return entry
    if isinstance(description, dict):
        for key, field in (("DOI", "DatasetDOI"), ("Version", "DatasetVersion")):
            if isinstance(description.get(field), str):
                entry[key] = description[field]
    return entry


def source_list(sources: Iterable[str | os.PathLike] | str | os.PathLike | None) -> list[str | os.PathLike]:
    """``sources`` as a list (one path given alone is a list of one)."""
    if sources is None:
        return []
    return [sources] if isinstance(sources, (str, os.PathLike)) else list(sources)


class SourceLinks:
    """Turn input paths into BIDS URIs, linking each new dataset in OUTPUT_DIR's ``dataset_description.json``.

    Parameters
    ----------
    output_dir : Path
        The derivatives dataset being written (absolute).
    update : callable
        Applies a :data:`DescriptionChange` to ``dataset_description.json`` under the lock
        (:meth:`bidsapp.outputs.writer.DerivativesWriter.update_description`).
    """

    def __init__(self, output_dir: Path, update: Callable[[DescriptionChange], dict[str, Any]]) -> None:
        self.output_dir = output_dir
        self._update = update
        self._roots: dict[Path, Path] = {}
        self._names: dict[Path, str] = {}

    def uri(self, source: str | os.PathLike) -> str:
        """``bids:<dataset>:<relative path>`` of ``source`` (relative paths are taken from the working directory)."""
        path = Path(os.path.abspath(source))
        if path.is_relative_to(self.output_dir):
            return f"bids::{path.relative_to(self.output_dir).as_posix()}"
        root = self._roots.get(path.parent)
        if root is None:
            root = self._roots[path.parent] = dataset_root(path)
        if root not in self._names:
            self._names[root] = self._link(root)
        return f"bids:{self._names[root]}:{path.relative_to(root).as_posix()}"

    def _link(self, root: Path) -> str:
        """The dataset's name in ``DatasetLinks``, adding it (and to ``SourceDatasets``) if it is new."""
        uri = root.as_uri()
        chosen: list[str] = []

        def add(description: dict[str, Any]) -> bool:
            links = description.setdefault("DatasetLinks", {})
            existing = next((name for name, value in links.items() if value == uri), None)
            if existing is not None:
                chosen.append(existing)
                return False
            base = name = dataset_name(root)
            number = 1
            while name in links:
                number += 1
                name = f"{base}{number}"
            links[name] = uri
            sources = description.setdefault("SourceDatasets", [])
            if all(entry.get("URL") != uri for entry in sources if isinstance(entry, dict)):
                sources.append(source_dataset(root))
            chosen.append(name)
            return True

        self._update(add)
        return chosen[0]
