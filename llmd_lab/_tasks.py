"""Stop background asyncio tasks the one way every component does: cancel them all, then wait for each.

Cancelling all before awaiting any lets them unwind together (one slow ``finally`` does not hold the rest
up). Stdlib only, so the library, the lab and the simulators can all import it (see the import contracts
in pyproject.toml).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable


async def cancel_and_wait(tasks: Iterable[asyncio.Task | None], *, swallow_errors: bool = False) -> None:
    """Cancel every task (None entries are skipped) and wait until each has ended.

    A task's cancellation is absorbed; an exception it ended with propagates unless ``swallow_errors`` (for
    callers that already logged it, or that stop whatever state the task was left in).
    """
    pending = [task for task in tasks if task is not None]
    for task in pending:
        task.cancel()
    quiet = (asyncio.CancelledError, Exception) if swallow_errors else (asyncio.CancelledError,)
    for task in pending:
        with contextlib.suppress(*quiet):
            await task
