"""``cancel_and_wait``: every task is cancelled and awaited; a task's own failure surfaces unless swallowed."""

from __future__ import annotations

import asyncio

import pytest

from llmd_lab._tasks import cancel_and_wait


async def _forever(cleaned: list[str], name: str) -> None:
    try:
        await asyncio.Event().wait()
    finally:
        cleaned.append(name)


async def _failed() -> None:
    raise RuntimeError("boom")


def test_all_tasks_are_cancelled_and_have_ended():
    async def main() -> tuple[list[str], list[asyncio.Task]]:
        cleaned: list[str] = []
        tasks = [asyncio.create_task(_forever(cleaned, n)) for n in ("a", "b")]
        await asyncio.sleep(0)  # let both reach their wait
        await cancel_and_wait([*tasks, None])
        return cleaned, tasks

    cleaned, tasks = asyncio.run(main())
    assert sorted(cleaned) == ["a", "b"]
    assert all(t.cancelled() for t in tasks)


def test_a_task_that_failed_raises_unless_swallowed():
    async def stop(swallow: bool) -> None:
        task = asyncio.create_task(_failed())
        await asyncio.wait([task])
        await cancel_and_wait([task], swallow_errors=swallow)

    with pytest.raises(RuntimeError, match="boom"):
        asyncio.run(stop(False))
    asyncio.run(stop(True))
