"""Read the contents of input files (discovery finds them; this reads them)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bidsapp.discovery import Run
from bidsapp.errors import MissingInputError


def read_confounds(run: Run) -> pd.DataFrame:
    """The run's fMRIPrep confounds table (any fMRIPrep version); ``n/a`` becomes NaN."""
    try:
        return pd.read_csv(run.confounds, sep="\t", na_values=["n/a"])
    except (OSError, ValueError) as error:
        raise MissingInputError(f"{run.confounds}: cannot be read as a TSV table ({error})") from error


def read_parcel_timeseries(run: Run) -> np.ndarray:
    """The run's parcel time series as a float array of shape (n_volumes, n_parcels).

    The HCP course layout stores parcels x time in ``.npy`` files; the BIDS-style
    form stores time x parcels in a TSV with the parcel names as header.
    """
    try:
        if run.data.suffix == ".npy":
            return np.load(run.data).T.astype(float)
        return pd.read_csv(run.data, sep="\t", na_values=["n/a"]).to_numpy(float)
    except (OSError, ValueError) as error:
        raise MissingInputError(f"{run.data}: cannot be read as parcel time series ({error})") from error
