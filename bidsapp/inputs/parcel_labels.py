"""Name, hemisphere and network of each parcel of HCP-style parcellated data.

The labels come from the dataset when it has them, else from the Glasser 360
table shipped with bidsapp (``bidsapp/data/glasser360.tsv``; networks of the
Cole-Anticevic partition, Ji et al. 2019, NeuroImage 185:35):

* HCP course layout: ``regions.npy`` (name, network, myelin per parcel, in the
  row order of the time series);
* BIDS-style form: the time series header gives the names; networks come from
  ``regions.npy`` or ``atlases/*/*_dseg.tsv`` (columns ``name``, ``network``)
  at the dataset root, matched by name, so a table in another order than the
  data still labels each parcel correctly (with a warning).

Hemispheres come from the table's ``hemisphere`` column, else from the
``R_``/``L_`` prefix of the Glasser names.
"""

from __future__ import annotations

import importlib.resources
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from bidsapp.errors import MissingInputError

LOGGER = logging.getLogger(__name__)
_PREFIX_HEMISPHERE = {"R": "right", "L": "left"}


def glasser_table() -> pd.DataFrame:
    """The shipped Glasser 360 table: index, name, hemisphere, network, myelin (right hemisphere first)."""
    with (importlib.resources.files("bidsapp") / "data" / "glasser360.tsv").open("r") as stream:
        return pd.read_csv(stream, sep="\t")


def dataset_root(data: Path, subject: str) -> Path:
    """The dataset directory of a run's data file (the parent of ``subjects/`` or ``sub-<id>/``)."""
    for parent in data.parents:
        if parent.name in ("subjects", f"sub-{subject}"):
            return parent.parent
    return data.parent


def node_coordinates(data: Path, subject: str, n_parcels: int) -> list[list[float]] | None:
    """Parcel centroids (mm) from the dataset's ``atlas.npz`` (``coords``, a row per parcel), if it has them.

    The HCP course's ``atlas.npz`` gives approximate MNI coordinates of each
    parcel's centroid, in the row order of the time series. Returns None when
    there is no such file or array; a ``coords`` of another shape is ignored
    with a warning.
    """
    path = dataset_root(data, subject) / "atlas.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path) as atlas:
            coordinates = atlas["coords"] if "coords" in atlas.files else None
    except (OSError, ValueError) as error:
        raise MissingInputError(f"{path}: cannot be read as an .npz archive ({error})") from error
    if coordinates is None:
        return None
    if coordinates.shape != (n_parcels, 3):
        LOGGER.warning("%s: coords has shape %s, not (%d, 3); parcel coordinates left out", path,
                       coordinates.shape, n_parcels)
        return None
    return np.round(coordinates.astype(float), 2).tolist()


def read_regions(path: Path) -> pd.DataFrame:
    """A labels table from ``regions.npy`` (name, network[, myelin]) or a ``*_dseg.tsv`` (name, network...)."""
    try:
        if path.suffix == ".npy":
            regions = np.load(path)
            rows = regions if regions.shape[-1] == 3 else regions.T
            return pd.DataFrame({"name": rows[:, 0].astype(str), "network": rows[:, 1].astype(str)})
        return pd.read_csv(path, sep="\t", dtype={"name": str, "network": str})
    except (OSError, ValueError, IndexError) as error:
        raise MissingInputError(f"{path}: cannot be read as parcel labels (name, network) ({error})") from error


def _dataset_labels(root: Path) -> Path | None:
    """The dataset's own labels file, if any."""
    candidates = [root / "regions.npy", *sorted(root.glob("atlases/*/*_dseg.tsv"))]
    return next((path for path in candidates if path.is_file()), None)


def parcel_table(names: Sequence[str], data: Path, subject: str) -> pd.DataFrame:
    """Label each parcel of a participant's data.

    Parameters
    ----------
    names : sequence of str
        Parcel names in data column order (``ParticipantJob.parcel_names``).
    data : Path
        One of the participant's time series files (locates the dataset root).
    subject : str
        The participant label.

    Returns
    -------
    DataFrame
        Columns name, hemisphere, network; one row per parcel in data order;
        ``n/a`` where a label is unknown.

    Raises
    ------
    MissingInputError
        If the dataset's labels file lacks some of the data's parcels (both files named).
    """
    source = _dataset_labels(dataset_root(data, subject))
    labels = read_regions(source) if source is not None else glasser_table()
    names = [str(name) for name in names]
    if "name" not in labels or "network" not in labels:
        raise MissingInputError(f"{source}: needs name and network columns to label the parcels")
    if source is not None:
        known = set(labels["name"])
        missing = [name for name in names if name not in known]
        if missing:
            raise MissingInputError(
                f"{source}: lacks {len(missing)} parcels of {data} (e.g. {missing[0]}); "
                "the labels table and the time series must name the same parcels")
        if list(labels["name"]) != names:
            LOGGER.warning("%s: parcels are in another order than in %s; labels matched by name", source, data)
    labels = labels.drop_duplicates("name").set_index("name")
    table = pd.DataFrame({"name": names})
    table["network"] = labels["network"].reindex(names).fillna("n/a").to_numpy()
    from_prefix = [_PREFIX_HEMISPHERE.get(name.split("_", 1)[0], "n/a") for name in names]
    if "hemisphere" in labels:
        given = labels["hemisphere"].reindex(names)
        table["hemisphere"] = np.where(given.notna(), given.astype(str), from_prefix)
    else:
        table["hemisphere"] = from_prefix
    return table[["name", "hemisphere", "network"]]
