"""The numpy float formatter writes exactly ``%.17g`` and reads back bit-identical (checked against Python's own
``%`` formatting, ``float()``, ``pandas.read_csv`` and exact rational arithmetic)."""

from __future__ import annotations

import io
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from bidsapp.outputs import float_text
from bidsapp.outputs.float_text import float_cells
from bidsapp.outputs.relmat import read_relmat, relmat_text

EDGES = [5e-324, -5e-324, 2.2250738585072014e-308, 2.225073858507201e-308, 1e-310, 1.0, -1.0, 0.0, -0.0, 1e-300,
         np.nextafter(1.0, 2.0), np.nextafter(1.0, 0.0), 0.1, 0.3, 1e16, 1e17, 9.999999999999999e16, 0.0001,
         9.9999999999999995e-05, 0.00001, 123456789012345678.0, 1.7976931348623157e308, np.inf, -np.inf, np.nan,
         0.5, 0.25, 12.5, 1e-5, 99999999999999984.0, 10.0, 100.0]


def _texts(values: np.ndarray, extended: bool = True) -> list[str]:
    cells = float_cells(values, extended)
    cells[:, -1] = ord("\t")
    return cells[cells != 0].tobytes().decode("ascii").split("\t")[:-1]


def _values() -> np.ndarray:
    rng = np.random.default_rng(11)
    bits = rng.integers(-(2 ** 63), 2 ** 63 - 1, size=200_000, dtype=np.int64)
    scales = 10.0 ** rng.integers(-12, 20, size=20_000)
    correlations = np.corrcoef(rng.normal(size=(60, 200)))
    return np.concatenate([bits.view(np.float64), rng.normal(size=50_000), rng.uniform(-1, 1, 20_000) * scales,
                           correlations.ravel(), np.arctanh(correlations[np.triu_indices(60, 1)]), EDGES])


@pytest.mark.parametrize("extended", [True, False])
def test_text_is_percent_17g_and_reads_back_bit_identical(extended):
    values = _values() if extended else np.array(EDGES)
    texts = _texts(values, extended)
    assert texts == ["n/a" if np.isnan(value) else "%.17g" % value for value in values.tolist()]
    finite = ~np.isnan(values)
    back = np.array([np.nan if text == "n/a" else float(text) for text in texts])
    assert np.array_equal(back[finite].view(np.int64), values[finite].view(np.int64))  # -0.0 and subnormals too
    assert np.isnan(back[~finite]).all()


def test_edge_values_read_back_bit_identical_through_read_csv_default_parser():
    values = np.array(EDGES)
    table = pd.read_csv(io.StringIO("x\n" + "\n".join(_texts(values)) + "\n"), na_values=["n/a"],
                        keep_default_na=False)
    finite = ~np.isnan(values)
    assert np.array_equal(table["x"].to_numpy()[finite].view(np.int64), values[finite].view(np.int64))


def test_powers_of_ten_are_accurate_enough_for_the_tie_window():
    if not float_text.EXTENDED:  # the one-by-one path formats everything; nothing to bound
        assert "%.17g" % 0.1 == _texts(np.array([0.1]))[0]
        return
    worst = 0.0
    for k, power in zip(range(-330, 345), float_text._POWERS, strict=True):
        numerator, denominator = power.as_integer_ratio()
        worst = max(worst, abs(float((Fraction(numerator, denominator) - Fraction(10) ** k) / Fraction(10) ** k)))
    error_in_units = (worst + 2.0 ** -64) * 1e17  # table error plus the product's rounding, mantissa below 1e17
    assert error_in_units < float_text.TIE_WINDOW


def test_relmat_reads_back_bit_identical_with_pandas_default_parser():
    rng = np.random.default_rng(12)
    matrix = np.corrcoef(rng.normal(size=(120, 300)))
    matrix[0, 1:6] = matrix[1:6, 0] = [5e-324, -0.0, 1e-300, np.nextafter(1.0, 0.0), np.nan]
    names = [f"P{k}" for k in range(120)]
    text = relmat_text(matrix, names)
    table = read_relmat(io.StringIO(text))
    assert list(table.index) == list(table.columns) == names
    assert np.array_equal(table.to_numpy().view(np.int64)[~np.isnan(matrix)],
                          matrix.view(np.int64)[~np.isnan(matrix)])
    reference = pd.DataFrame(matrix, index=pd.Index(names, name="node"), columns=names)
    assert text == reference.to_csv(sep="\t", na_rep="n/a", float_format="%.17g", lineterminator="\n")
