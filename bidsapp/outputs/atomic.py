"""Atomic file writes: write under a hidden temporary name beside the file, then rename into place.

A failed or interrupted write never leaves a half-written file in place of a
good one. :class:`bidsapp.outputs.writer.DerivativesWriter` writes every output
this way; the HCP conversion and the demo simulators use the same helpers.

A write removes its temporaries on every exit path that runs Python code
(exceptions, and SIGTERM and SIGINT, which bidsapp turns into exceptions:
:mod:`bidsapp.interruption`). A process killed outright (``kill -9``) cannot, so
each temporary's name records the process and host that wrote it, and
:func:`remove_stale_temporaries` removes those whose process is gone.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import socket
from collections.abc import Callable, Collection, Iterable
from pathlib import Path
from typing import Any

from bidsapp.interruption import process_running

_TEMPORARY = re.compile(r"\..+\.(?P<pid>[0-9]+)@(?P<host>[A-Za-z0-9-]*)\.[0-9a-f]{8}\.tmp(\..*)?")


def _host() -> str:
    """Return the short host name that temporary names record (letters, digits and ``-``)."""
    return re.sub(r"[^A-Za-z0-9-]", "", socket.gethostname().split(".")[0])[:32]


def temporary_path(path: Path) -> Path:
    """Create (exclusively, honouring the umask) an empty hidden temporary beside ``path``.

    The name records the writing process and host and keeps the final extension, e.g.
    ``.sub-01_bold.1234@node7.9f3a1c2e.tmp.nii.gz``, because nibabel chooses the format from it.
    """
    stem, dot, extension = path.name.partition(".")
    owner = f"{os.getpid()}@{_host()}"
    while True:
        tmp = path.with_name(f".{stem}.{owner}.{secrets.token_hex(4)}.tmp{dot}{extension}")
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


def remove_stale_temporaries(directory: Path, gone: Collection[int] = ()) -> list[Path]:
    """Remove the temporaries under ``directory`` that no running write will rename into place.

    Those are the temporaries written on this host by a process that no longer runs (a run
    killed with ``kill -9``) or by one of the processes ``gone``. Temporaries of other hosts
    (OUTPUT_DIR on a shared file system) and of running processes (another bidsapp writing
    into the same OUTPUT_DIR) are left alone; their hidden names keep them out of every
    output pattern.

    Parameters
    ----------
    directory : Path
        Searched recursively; a missing directory holds none.
    gone : collection of int, optional
        Process ids whose temporaries are stale even if the process still exists (e.g. the
        caller, when none of its writes is under way).

    Returns
    -------
    list of Path
        The temporaries removed.
    """
    host = _host()
    removed = []
    for path in sorted(Path(directory).rglob(".*.tmp*")):
        match = _TEMPORARY.fullmatch(path.name)
        if match is None or match["host"] != host or not path.is_file():
            continue
        pid = int(match["pid"])
        if pid in gone or not process_running(pid):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def write_text_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` as UTF-8 with Unix line ends."""
    with open(path, "w", encoding="utf-8", newline="\n") as stream:
        stream.write(text)


def publish_once(final: Path, text: str) -> None:
    """Create ``final`` holding ``text`` unless it exists, safely when several processes race.

    Each process writes a complete temporary file and hard-links it to the final name, which
    fails for all but the first; the others keep the file the first wrote. On file systems
    without hard links the file is renamed into place instead (then the last writer wins, and
    readers still never see a partial file).
    """
    if final.exists():
        return
    tmp = temporary_path(final)
    try:
        write_text_file(tmp, text)
        try:
            os.link(tmp, final)
        except FileExistsError:
            pass
        except OSError as error:
            if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EXDEV):
                raise
            if not final.exists():
                os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
