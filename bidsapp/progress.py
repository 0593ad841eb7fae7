"""Progress bars for anything a user waits for (shown on a terminal only)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], unit: str, total: int | None = None) -> Iterator[T]:
    """Iterate over ``items`` with a progress bar on stderr when it is a terminal."""
    from tqdm import tqdm

    return iter(tqdm(items, unit=f" {unit}", total=total, disable=None, leave=False, dynamic_ncols=True))
