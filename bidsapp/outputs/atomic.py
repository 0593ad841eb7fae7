"""Atomic file writes: write under a hidden temporary name beside the file, then rename into place.

A failed or interrupted write never leaves a half-written file in place of a
good one. :class:`bidsapp.outputs.writer.DerivativesWriter` writes every output
this way; the HCP conversion and the demo simulators use the same helpers.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any


def temporary_path(path: Path) -> Path:
    """Create (exclusively, honouring the umask) an empty hidden temporary beside ``path``.

    The name keeps the final extension, e.g. ``.sub-01_bold.1234.9f3a1c2e.tmp.nii.gz``,
    because nibabel chooses the format from it.
    """
    stem, dot, extension = path.name.partition(".")
    while True:
        tmp = path.with_name(f".{stem}.{os.getpid()}.{secrets.token_hex(4)}.tmp{dot}{extension}")
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        except FileExistsError:
            continue
        return tmp


def replace_atomically(files: Iterable[tuple[Path, Callable[[Path], Any]]]) -> Path:
    """Write every file to a temporary beside it, then rename them all into place in the given order.

    With a sidecar last, an existing sidecar is removed before the data file is replaced, so
    the final sidecar always describes the final data file: an interruption in between leaves
    data without a sidecar, which :meth:`bidsapp.outputs.writer.DerivativesWriter.is_complete`
    reports as incomplete.

    Parameters
    ----------
    files : iterable of (Path, callable)
        Each final path with a function that writes the content to the temporary path it is
        given (which keeps the final extension). Parent directories are created.

    Returns
    -------
    Path
        The first path.
    """
    files = list(files)
    temporaries: list[Path] = []
    try:
        for path, save in files:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporaries.append(temporary_path(path))
            save(temporaries[-1])
        if len(files) > 1:
            files[-1][0].unlink(missing_ok=True)
        for (path, _), tmp in zip(files, temporaries, strict=True):
            os.replace(tmp, path)
    finally:
        for tmp in temporaries:
            tmp.unlink(missing_ok=True)
    return files[0][0]


def write_atomically(path: str | os.PathLike, save: Callable[[Path], Any]) -> Path:
    """Write one file through a temporary beside it, renamed into place (:func:`replace_atomically`).

    Parameters
    ----------
    path : str or Path
        The final file; its directory is created.
    save : callable
        Writes the content to the temporary path it is given.

    Returns
    -------
    Path
    """
    return replace_atomically([(Path(path), save)])
