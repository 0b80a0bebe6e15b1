"""Progress bars that appear on a terminal and stay silent otherwise."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress_enabled(progress: bool | None) -> bool:
    """Decide whether to draw a bar.

    ``None`` means "only when stderr is an interactive terminal"; ``True`` and
    ``False`` force it on or off.
    """
    if progress is None:
        try:
            return sys.stderr.isatty()
        except (AttributeError, ValueError):
            return False
    return bool(progress)


def progress_bar(total: int, desc: str, progress: bool | None = None, unit: str = "it"):
    """A tqdm bar on stderr (disabled when :func:`progress_enabled` says so)."""
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        disable=not progress_enabled(progress),
        file=sys.stderr,
        leave=False,
        dynamic_ncols=True,
    )


def track(iterable: Iterable[T], total: int | None, desc: str,
          progress: bool | None = None, unit: str = "it") -> Iterator[T]:
    """Iterate with a progress bar."""
    with progress_bar(total if total is not None else 0, desc, progress, unit) as bar:
        for item in iterable:
            yield item
            bar.update(1)
