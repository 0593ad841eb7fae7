"""A run's events: read from a BIDS ``events.tsv`` or an HCP EV directory, and checked against the run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bidsapp.errors import MissingInputError

#: Columns of the events table :func:`read_events` returns.
EVENT_COLUMNS = ("onset", "duration", "trial_type", "modulation")
#: Files of an HCP EV directory that are not conditions (HCP's scanner sync time).
NON_CONDITION_EV_FILES = ("Sync.txt",)


def read_events(path: Path) -> pd.DataFrame:
    """Read a run's events from a BIDS ``events.tsv`` or an HCP EV directory.

    Parameters
    ----------
    path : Path
        An ``events.tsv`` (columns ``onset``, ``duration`` in seconds, optional
        ``trial_type`` and ``modulation`` or ``amplitude``; ``n/a`` allowed), or
        a directory of FSL 3-column EV files ``<condition>.txt`` (onset and
        duration in seconds, amplitude), one per condition; empty EV files are
        conditions without events in this run. ``Sync.txt`` is not a condition.

    Returns
    -------
    DataFrame
        Columns onset, duration, trial_type, modulation, sorted by onset. Events
        of a ``events.tsv`` without ``trial_type`` are all ``dummy`` (nilearn's
        name); rows whose ``trial_type`` is ``n/a`` are left out.

    Raises
    ------
    MissingInputError
        If a file is missing or cannot be read as events (the file is named).
    """
    path = Path(path)
    if path.is_dir():
        return _cached_ev_directory(path)
    events = _read_events_tsv(path).astype({"onset": float, "duration": float, "modulation": float,
                                            "trial_type": str})
    return events.sort_values(["onset", "trial_type"], kind="stable").reset_index(drop=True)


_EV_CACHE: dict[Path, tuple[tuple, pd.DataFrame]] = {}
"""EV directories read in this process: their files' names, sizes and modification times, and their events."""


def _cached_ev_directory(path: Path) -> pd.DataFrame:
    """:func:`_read_ev_directory`, each directory parsed once per process while its files stay unchanged.

    The HCP level reads every task run's events twice (the preflight, then the
    participant's plan, in worker processes forked after it). A copy is returned,
    so callers may change it.
    """
    stamp = tuple((entry.name, entry.stat().st_size, entry.stat().st_mtime_ns)
                  for entry in sorted(path.glob("*.txt")))
    cached = _EV_CACHE.get(path)
    if cached is None or cached[0] != stamp:
        cached = _EV_CACHE[path] = (stamp, _read_ev_directory(path))
    return cached[1].copy()


def _read_events_tsv(path: Path) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, sep="\t", na_values=["n/a"], keep_default_na=False)
    except (OSError, ValueError) as error:
        raise MissingInputError(f"{path}: cannot be read as a BIDS events TSV ({error})") from error
    missing = [column for column in ("onset", "duration") if column not in table]
    if missing:
        raise MissingInputError(f"{path}: no {' or '.join(missing)} column; BIDS events need onset and duration "
                                "in seconds")
    trial_type = table["trial_type"] if "trial_type" in table else pd.Series("dummy", index=table.index)
    modulation = next((table[c] for c in ("modulation", "amplitude") if c in table), 1.0)
    events = pd.DataFrame({"onset": table["onset"], "duration": table["duration"],
                           "trial_type": trial_type, "modulation": modulation})
    events = events[events["trial_type"].notna()]
    try:
        events = events.astype({"onset": float, "duration": float, "modulation": float})
    except ValueError as error:
        raise MissingInputError(f"{path}: onset, duration and modulation must be numbers ({error})") from error
    if events[["onset", "duration", "modulation"]].isna().any(axis=None):
        raise MissingInputError(f"{path}: an event has n/a onset, duration or modulation; give numbers")
    return events.astype({"trial_type": str})


def _read_ev_directory(path: Path) -> pd.DataFrame:
    blocks, conditions = [], []
    for ev_file in sorted(path.glob("*.txt")):
        if ev_file.name in NON_CONDITION_EV_FILES:
            continue
        try:
            text = ev_file.read_text()
            rows = np.array([line.split() for line in text.splitlines() if line.strip()], dtype=float)
        except (OSError, ValueError) as error:
            raise MissingInputError(f"{ev_file}: cannot be read as an FSL 3-column EV file ({error})") from error
        if rows.size and (rows.ndim != 2 or rows.shape[1] != 3):
            raise MissingInputError(f"{ev_file}: expected 3 columns (onset, duration, amplitude) per line")
        blocks.append(rows.reshape(-1, 3))
        conditions += [ev_file.stem] * len(blocks[-1])
    rows = np.concatenate(blocks) if blocks else np.empty((0, 3))
    names = np.array(conditions, dtype=str)
    order = np.lexsort((np.unique(names, return_inverse=True)[1], rows[:, 0]))  # stable: by onset, then name
    return pd.DataFrame({"onset": rows[order, 0], "duration": rows[order, 1],
                         "trial_type": pd.Series(names[order].tolist(), dtype=str), "modulation": rows[order, 2]})


def ev_conditions(path: Path) -> tuple[str, ...]:
    """Conditions a run's events define, including HCP EV files without events (sorted)."""
    path = Path(path)
    if path.is_dir():
        return tuple(sorted(p.stem for p in path.glob("*.txt") if p.name not in NON_CONDITION_EV_FILES))
    return tuple(sorted(set(read_events(path)["trial_type"])))


def check_events(events: pd.DataFrame, n_volumes: int, tr: float, path: Path) -> None:
    """Refuse events that start after the run ends.

    Parameters
    ----------
    events : DataFrame
        As :func:`read_events` returns.
    n_volumes : int
        Volumes in the run.
    tr : float
        Repetition time, seconds; the run lasts ``n_volumes * tr`` seconds.
    path : Path
        The events file or EV directory, for the message.

    Raises
    ------
    MissingInputError
        Naming the file (the EV file of the condition for an HCP EV directory)
        and the first onset beyond the run.
    """
    end = n_volumes * tr
    late = events[events["onset"] >= end]
    if late.empty:
        return
    first = late.iloc[0]
    where = Path(path) / f"{first['trial_type']}.txt" if Path(path).is_dir() else Path(path)
    raise MissingInputError(
        f"{where}: event {first['trial_type']!r} at onset {first['onset']:g} s starts after the run ends "
        f"({n_volumes} volumes x {tr:g} s = {end:g} s); check that the events belong to this run")
