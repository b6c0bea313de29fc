"""Pure work in steps (:mod:`services.projection.steps`): run through at once or with the event
loop running between the steps, the result is the same; driven asynchronously, other tasks run
between two steps (the transaction in flight is answered while a batch is prepared)."""

from __future__ import annotations

import asyncio

from services.projection.steps import Steps, finish, stepped


def _sum_in_steps(values: list[int], trace: list[str]) -> Steps[int]:
    total = 0
    for v in values:
        total += v
        trace.append(f"step {v}")
        yield
    return total


def test_finish_runs_every_step_and_returns_the_result() -> None:
    trace: list[str] = []
    assert finish(_sum_in_steps([1, 2, 3], trace)) == 6
    assert trace == ["step 1", "step 2", "step 3"]
    assert finish(_sum_in_steps([], [])) == 0


async def test_stepped_lets_other_tasks_run_between_steps() -> None:
    trace: list[str] = []

    async def other() -> None:
        for i in range(2):
            trace.append(f"other {i}")
            await asyncio.sleep(0)  # only yield

    task = asyncio.create_task(other())
    assert await stepped(_sum_in_steps([1, 2, 3], trace)) == 6
    await task
    assert trace.index("other 0") < trace.index("step 2")  # ran between the steps
    assert trace.index("other 1") < trace.index("step 3")
