r"""The TSV layout of relationship matrices (``*_relmat.tsv``).

A square matrix of regions: the header is ``node`` (``network`` for
network means) followed by the region names; each row starts with its
region's name. Values are written with 17 significant digits, which read back
exactly as float64; NaN is ``n/a``. Read one with :func:`read_relmat` or
``pandas.read_csv(path, sep="\t", index_col=0, na_values="n/a")``.

:func:`relmat_bytes` writes the same text as ``DataFrame.to_csv`` with
``float_format="%.17g"``, about 15 times faster (which matters at 360 x 360 per
run and participant): values are formatted by numpy
(:mod:`bidsapp.outputs.float_text`), and a symmetric matrix has each value
formatted once for both triangles.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from bidsapp.outputs.float_text import WIDTH, float_cells

#: Header of the first column (the row names).
INDEX_COLUMN = "node"


def relmat_text(matrix: np.ndarray, names: Sequence[str], index_column: str = INDEX_COLUMN) -> str:
    """A square matrix as TSV text in the :mod:`bidsapp.outputs.relmat` layout (:func:`relmat_bytes`, decoded)."""
    return relmat_bytes(matrix, names, index_column).decode("utf-8")


def relmat_bytes(matrix: np.ndarray, names: Sequence[str], index_column: str = INDEX_COLUMN) -> bytes:
    """A square matrix as UTF-8 TSV text in the :mod:`bidsapp.outputs.relmat` layout.

    Parameters
    ----------
    matrix : ndarray of shape (n, n)
    names : sequence of str
        The n region names (row and column order).
    index_column : str, default="node"
        Header of the first column (``network`` for network means).

    Returns
    -------
    bytes
        What :meth:`bidsapp.outputs.writer.DerivativesWriter.write_text` writes as it is.
    """
    names = [str(name) for name in names]
    matrix = np.asarray(matrix, dtype=float)
    n = len(names)
    if matrix.shape != (n, n):
        raise ValueError(f"a {matrix.shape} matrix needs {matrix.shape[0]} names, got {n}")
    if n and np.array_equal(matrix, matrix.T, equal_nan=True):
        upper = np.triu_indices(n)
        index = np.empty((n, n), dtype=np.intp)
        index[upper] = index.T[upper] = np.arange(len(upper[0]))
        cells = float_cells(matrix[upper]).view(f"V{WIDTH}")[:, 0][index].view(np.uint8).reshape(n, n, WIDTH)
    else:
        cells = float_cells(matrix).reshape(n, n, WIDTH)
    cells[:, :, -1] = ord("\t")
    cells[:, -1:, -1] = ord("\n")
    body = cells.tobytes().translate(None, b"\0").split(b"\n")
    lines = ["\t".join([index_column, *names]).encode(), *(name.encode() + b"\t" + row
                                                          for name, row in zip(names, body, strict=False))]
    return b"\n".join(lines) + b"\n"


def read_relmat(path: Path) -> pd.DataFrame:
    """Read a ``*_relmat.tsv``: a DataFrame indexed (first column) and labelled by region or network name."""
    return pd.read_csv(path, sep="\t", index_col=0, na_values=["n/a"], keep_default_na=False)
