"""Pure work in steps: a generator that yields between slices of its work and returns its
result, so an asynchronous caller can let its event loop run between the slices
(:func:`stepped`) and a synchronous one can run it through at once (:func:`finish`).

Invariant: the result does not depend on how the steps are driven (nor on the slice size the
work was cut into): a step does only pure work, and nothing outside the generator sees its
state before it returns."""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import TypeVar

T = TypeVar("T")

#: Work cut into slices: yields nothing (a pause), returns the result.
Steps = Generator[None, None, T]

#: A step as large as any work here: the steps run through in one slice.
AT_ONCE = 1 << 30


def finish(steps: Steps[T]) -> T:
    """Run ``steps`` through at once; their result."""
    while (done := _advance(steps)) is None:
        pass
    return done[0]


async def stepped(steps: Steps[T]) -> T:
    """Run ``steps`` to their result, letting the event loop run between two steps."""
    while True:
        done = _advance(steps)
        if done is not None:
            return done[0]
        await asyncio.sleep(0)  # a pause between two slices, not a wait for something


def _advance(steps: Steps[T]) -> tuple[T] | None:
    """Run one step: None while there are more, else the result (in a 1-tuple)."""
    try:
        next(steps)
    except StopIteration as end:
        return (end.value,)
    return None
