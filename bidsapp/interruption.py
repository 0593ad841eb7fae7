"""Clean interruption: SIGTERM and SIGINT stop the run, its worker processes and their writes.

A scheduler's time limit sends SIGTERM, a user's Ctrl-C SIGINT. While
:func:`raise_on_signals` is in effect (``bidsapp.cli.main``), either raises
:class:`Interrupted`, so every ``finally`` clause runs and removes its
temporary files (:mod:`bidsapp.outputs.atomic`). The level that was running
stops its worker processes (:func:`stop_processes`), which unwind their own
writes the same way (:func:`start_worker`, :func:`raise_on_signals` around each
job), and says what was finished; ``main`` prints one line and exits 130
(SIGINT) or 143 (SIGTERM), as CONTRACT section 5 says.

A worker killed on its own (SIGKILL: the kernel's out-of-memory killer) cannot
unwind; each worker therefore reports the run it is on (:class:`RunReporter`,
read by :class:`RunTracker`), so that the failure names the run that was lost.
"""

from __future__ import annotations

import logging
import multiprocessing.queues
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""The signals that interrupt a run."""
STOP_TIMEOUT_S = 10.0
"""Seconds a process has to exit after SIGTERM before it is killed (SIGKILL)."""


class Interrupted(KeyboardInterrupt):
    """The run received SIGINT or SIGTERM (a KeyboardInterrupt, so ``except Exception`` lets it pass).

    Parameters
    ----------
    signum : int
        The signal received.
    finished : str, optional
        What was finished, e.g. ``"3 of 8 participants finished"``, when the running level knows.
    """

    def __init__(self, signum: int, finished: str | None = None) -> None:
        super().__init__(signum, finished)
        self.signum = signum
        self.finished = finished

    @property
    def exit_code(self) -> int:
        """128 plus the signal number: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + self.signum

    def __str__(self) -> str:
        """The one line the CLI prints: the signal, what was finished and what a re-run does."""
        done = f": {self.finished}" if self.finished else ""
        name = signal.Signals(self.signum).name
        return f"interrupted ({name}){done}; completed outputs are kept; a re-run does the rest"


def _raise_once(signum: int, frame: FrameType | None) -> None:
    """Raise :class:`Interrupted`, ignoring further signals so that stopping is not interrupted in turn."""
    for other in SIGNALS:
        signal.signal(other, signal.SIG_IGN)
    raise Interrupted(signum)


def raise_on_signals(signals: Collection[int] = SIGNALS) -> Callable[[], None]:
    """Make ``signals`` raise :class:`Interrupted` (the first; later ones are ignored).

    Signal handlers belong to the main thread; called from another thread this does nothing.

    Parameters
    ----------
    signals : collection of int, default SIGINT and SIGTERM

    Returns
    -------
    callable
        Restores the previous handlers.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {signum: signal.signal(signum, _raise_once) for signum in signals}

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    return restore


def _exit_at_once(signum: int, frame: FrameType | None) -> None:
    os._exit(128 + signum)


def start_worker() -> None:
    """Set up a worker process's signals: SIGINT is ignored, SIGTERM ends it at once.

    The main process receives SIGINT too (Ctrl-C reaches the whole process group) and stops
    the workers with SIGTERM. A worker that is running a job makes SIGTERM raise for the
    job's duration (:func:`raise_on_signals`), so the job's writes remove their temporaries.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_at_once)


def process_running(pid: int) -> bool:
    """Tell whether process ``pid`` exists on this machine and has not exited (a zombie has)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # it exited meanwhile, or there is no /proc to tell a zombie
        return not Path("/proc").is_dir()
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def descendants(pid: int | None = None) -> list[int]:
    """Return the ids of every process descended from ``pid`` (default: this process), from ``/proc``.

    Returns an empty list where there is no ``/proc``.
    """
    root = os.getpid() if pid is None else pid
    children: dict[int, list[int]] = {}
    proc = Path("/proc")
    for entry in proc.iterdir() if proc.is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[-1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found: list[int] = []
    pending = [root]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def _ignores_sigterm(pid: int) -> bool:
    """Tell whether process ``pid`` ignores SIGTERM (from ``/proc``; False where it cannot tell)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    ignored = next((line.split()[1] for line in status.splitlines() if line.startswith("SigIgn:")), "0")
    return bool(int(ignored, 16) >> (signal.SIGTERM - 1) & 1)


def stop_processes(pids: Collection[int], timeout_s: float = STOP_TIMEOUT_S) -> list[int]:
    """Send SIGTERM to each process, wait for all to exit, and kill (SIGKILL) those still running after ``timeout_s``.

    Processes that ignore SIGTERM are left alone: those are the resource trackers of
    :mod:`multiprocessing` and joblib's loky, which exit by themselves once this process has
    exited, after releasing what the workers left (shared memory, semaphores).

    Returns
    -------
    list of int
        The processes that had to be killed.
    """
    pids = [pid for pid in pids if not _ignores_sigterm(pid)]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout_s
    while any(process_running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    killed = [pid for pid in pids if process_running(pid)]
    for pid in killed:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return killed


class RunReporter(logging.Handler):
    """In a worker process: tell the main process which run the worker is on.

    The pipelines' log lines about a run start with its name (``"%s: reading %s"``, the
    name the first argument); the first such line of each run is reported, with the
    worker's process id, and the end of a job (done, or unwound by SIGTERM) as ``None``.
    A worker that is killed cannot say so: its last report names the run it died on
    (:meth:`RunTracker.lost`).

    Parameters
    ----------
    reports : multiprocessing.Queue
        Read by the main process's :class:`RunTracker`.
    """

    def __init__(self, reports: multiprocessing.queues.Queue) -> None:
        super().__init__(logging.DEBUG)
        self.reports = reports
        self.runs: frozenset[str] = frozenset()
        self.current: str | None = None

    def start(self, runs: Sequence[str]) -> None:
        """A job on ``runs`` (their names) starts, with the first."""
        self.runs = frozenset(runs)
        self._report(runs[0])

    def emit(self, record: logging.LogRecord) -> None:
        """Report the run a log line names, when it is another of the job's runs."""
        name = record.args[0] if isinstance(record.args, tuple) and record.args else None
        if isinstance(name, str) and name in self.runs and name != self.current:
            self._report(name)

    def end(self, *, flush: bool = False) -> None:
        """The job ended; ``flush`` before the process exits at once (``os._exit``), so that the report arrives."""
        self._report(None)
        if flush:
            self.reports.close()
            self.reports.join_thread()

    def _report(self, run: str | None) -> None:
        self.current = run
        self.reports.put((os.getpid(), run))


class RunTracker:
    """In the main process: the run each worker process is on, read from their :class:`RunReporter` reports.

    A thread reads the reports as they come (a worker whose reports are not read would
    block once the pipe is full).

    Parameters
    ----------
    reports : multiprocessing.Queue
        Passed to each worker's :class:`RunReporter`.
    """

    def __init__(self, reports: multiprocessing.queues.Queue) -> None:
        self.reports = reports
        self.running: dict[int, str] = {}
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._read, name="bidsapp-run-tracker", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        """Record the reports until asked to stop and none is left."""
        while True:
            try:
                pid, run = self.reports.get(timeout=0.1)
            except queue.Empty:
                if self._stopping.is_set():
                    return
                continue
            if run is None:
                self.running.pop(pid, None)
            else:
                self.running[pid] = run

    def stop(self) -> None:
        """Read the reports left (call once the workers have ended) and stop reading."""
        self._stopping.set()
        self._thread.join()

    def lost(self) -> str:
        """The runs of the workers that ended without reporting the end of their job: the killed ones."""
        self.stop()
        return ", ".join(sorted(self.running.values())) or "a run (which one is unknown)"
