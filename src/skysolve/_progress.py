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


class _NoBar:
    """What a disabled bar does (nothing), without importing tqdm: that import (asyncio
    with it) is a tenth of a one-shot command's start-up."""

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: float = 1) -> None:
        return None

    def clear(self) -> None:
        return None

    def set_postfix(self, *args: object, **kwargs: object) -> None:
        return None

    def set_description(self, *args: object, **kwargs: object) -> None:
        return None

    def close(self) -> None:
        return None


def progress_bar(total: int, desc: str, progress: bool | None = None, unit: str = "it"):
    """A tqdm bar on stderr (a stand-in that does nothing when :func:`progress_enabled`
    says no)."""
    if not progress_enabled(progress):
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        disable=False,
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
