r"""Float64 arrays as ``%.17g`` text, formatted by numpy rather than one value at a time.

:func:`float_cells` writes each value exactly as ``"%.17g" % value`` does (17
significant digits, which read back as the identical float64; trailing zeros
dropped; fixed notation for exponents -4 to 16, ``1.5e-05`` otherwise; ``n/a``
for NaN), about five times faster on large arrays. The 17-digit mantissa is
``rint(|x| * 10**(16 - exponent))`` computed in 80-bit extended precision,
within 0.012 of a unit of the 17th digit of the exact product; the values
closer than ``TIE_WINDOW`` to a rounding tie (about 3 %), whose correct rounding
that error could flip, NaN, infinities and zeros are formatted by ``%`` one by
one, and so is everything where ``long double`` has no 64-bit mantissa.
"""

from __future__ import annotations

import numpy as np

#: Bytes per cell: sign, 17 digits, point, ``e-308`` or ``0.000`` and one separator.
WIDTH = 25
#: Whether ``long double`` carries the 64-bit mantissa the exact scaling needs (x86-64, aarch64 Linux).
EXTENDED = np.finfo(np.longdouble).nmant >= 63
_DIGITS = 17
_POWERS = np.power(np.longdouble(10), np.arange(-330, 345).astype(np.longdouble))  # 10**k at _POWERS[k + 330]
_ZERO, _POINT, _MINUS = ord("0"), ord("."), ord("-")
_LEADING_ZEROS = np.where(np.arange(3) < np.arange(4)[:, None], _ZERO, 0).astype(np.uint8)  # k zeros, k = 0..3
_QUADS = np.frombuffer("".join(f"{k:04d}" for k in range(10_000)).encode(), dtype=np.uint32)  # "0000".."9999"
#: Distance to a rounding tie in the 17th digit below which ``%.17g`` rounds instead: more than the
#: extended-precision error of the scaled mantissa (powers of ten within 6.5e-20, the product within 5.5e-20,
#: so within 0.012 of a unit below 1e17).
TIE_WINDOW = 1 / 64


def float_cells(values: np.ndarray, extended: bool = EXTENDED) -> np.ndarray:
    """Each value's ``%.17g`` text as a row of ASCII bytes, padded with zero bytes.

    Parameters
    ----------
    values : ndarray
        Float64 values (any shape; flattened).
    extended : bool
        Format with extended precision (default where available); False formats with ``%`` one by one.

    Returns
    -------
    ndarray of uint8, shape (values.size, WIDTH)
        The last column is zero, left for a separator; ``cells[cells != 0].tobytes()`` is the text without one.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    regular = np.isfinite(values) & (values != 0)
    cells, tie = _regular_cells(np.where(regular, values, 1.0))
    undecided = ~regular | tie | (not extended)
    slow = np.flatnonzero(undecided)
    if slow.size:
        texts = ("%.17g\n" * slow.size % tuple(values[slow].tolist())).replace("nan", "n/a").split("\n")[:-1]
        cells[slow, :-1] = np.array(texts, dtype=f"S{WIDTH - 1}").view(np.uint8).reshape(-1, WIDTH - 1)  # 0-padded
    return cells


def _regular_cells(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The cells of finite, nonzero ``values``, and where they are within ``TIE_WINDOW`` of a tie.

    Values within ``TIE_WINDOW`` of a rounding tie in the 17th digit are left
    for ``%.17g`` to round (their cells are to be overwritten).
    """
    magnitude = np.abs(values)
    exponent = np.floor(np.log10(magnitude)).astype(np.int64)
    scaled = _scaled(magnitude, exponent)
    rounded = np.rint(scaled)
    mantissa = rounded.astype(np.int64)
    off = np.flatnonzero((mantissa >= 10 ** _DIGITS) | (mantissa < 10 ** (_DIGITS - 1)))  # log10 across a power
    if off.size:
        exponent[off] += np.where(mantissa[off] >= 10 ** _DIGITS, 1, -1)
        scaled[off] = _scaled(magnitude[off], exponent[off])
        rounded[off] = np.rint(scaled[off])
        mantissa[off] = rounded[off].astype(np.int64)
    tie = np.abs((scaled - rounded).astype(np.float64)) > 0.5 - TIE_WINDOW
    digits = _digits(mantissa, np.where((exponent >= 0) & (exponent < _DIGITS), exponent + 1, 1))
    sign = np.where(values < 0, _MINUS, 0).astype(np.uint8)
    # Every cell as "0." and up to three zeros before the digits (exponents -4 to -1, the usual ones of
    # correlations); other exponents are overwritten below, in one group per exponent.
    cells = np.zeros((values.size, WIDTH), dtype=np.uint8)
    cells[:, 0] = sign
    cells[:, 1] = _ZERO
    cells[:, 2] = _POINT
    cells[:, 3:6] = _LEADING_ZEROS[np.clip(-1 - exponent, 0, 3)]
    cells[:, 6:6 + _DIGITS] = digits
    for value in np.flatnonzero(np.bincount(np.clip(exponent + 1, 0, _DIGITS + 1))[1:_DIGITS + 1]):
        group = np.flatnonzero(exponent == value)
        cells[group] = _whole(sign[group], digits[group], int(value))
    group = np.flatnonzero((exponent < -4) | (exponent >= _DIGITS))
    if group.size:
        cells[group] = _scientific(sign[group], digits[group], exponent[group])
    return cells, tie


def _digits(mantissa: np.ndarray, whole: np.ndarray) -> np.ndarray:
    """The 17 digits of each mantissa as ASCII, trailing zeros after the first ``whole`` digits as zero bytes."""
    words = np.empty((mantissa.size, 5), dtype=np.uint32)  # 3 bytes of padding, the first digit, 4 quads
    remainder = mantissa
    for column in range(4, 0, -1):
        remainder, quad = np.divmod(remainder, 10_000)
        words[:, column] = _QUADS.take(quad)
    digits = words.view(np.uint8)[:, 3:]
    digits[:, 0] = remainder + _ZERO
    trailing = np.flatnonzero(digits[:, -1] == _ZERO)
    if trailing.size:
        zeros = np.logical_and.accumulate(digits[trailing, ::-1] == _ZERO, axis=1)[:, ::-1]
        zeros &= np.arange(_DIGITS) >= whole[trailing, None]
        digits[trailing] = np.where(zeros, 0, digits[trailing])
    return digits


def _scaled(magnitude: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """``magnitude * 10**(16 - exponent)`` in extended precision."""
    return magnitude.astype(np.longdouble) * _POWERS[_DIGITS - 1 - exponent + 330]


def _whole(sign: np.ndarray, digits: np.ndarray, exponent: int) -> np.ndarray:
    """Cells of values sharing one exponent from 0 to 16, in fixed notation (``12.5``, ``-3``)."""
    cells = np.zeros((len(sign), WIDTH), dtype=np.uint8)
    cells[:, 0] = sign
    whole = exponent + 1
    cells[:, 1:1 + whole] = digits[:, :whole]
    cells[:, 1 + whole] = np.where(digits[:, whole:].any(axis=1), _POINT, 0) if whole < _DIGITS else 0
    cells[:, 2 + whole:2 + _DIGITS] = digits[:, whole:]
    return cells


def _scientific(sign: np.ndarray, digits: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """Cells in ``%g``'s exponent notation (``1.5e-05``, ``-2.25e+300``)."""
    cells = np.zeros((len(sign), WIDTH), dtype=np.uint8)
    cells[:, 0] = sign
    cells[:, 1] = digits[:, 0]
    cells[:, 2] = np.where(digits[:, 1:].any(axis=1), _POINT, 0)
    cells[:, 3:2 + _DIGITS] = digits[:, 1:]
    cells[:, 2 + _DIGITS] = ord("e")
    cells[:, 3 + _DIGITS] = np.where(exponent < 0, _MINUS, ord("+"))
    size = np.abs(exponent)
    cells[:, 4 + _DIGITS] = np.where(size >= 100, size // 100 + _ZERO, 0)
    cells[:, 5 + _DIGITS] = size // 10 % 10 + _ZERO
    cells[:, 6 + _DIGITS] = size % 10 + _ZERO
    return cells
