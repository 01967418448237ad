"""Container logs as the kubelet keeps them: the current run and the previous (crashed) one."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator


class LogBuffer:
    """Lines a container printed; ``follow`` readers wait for more until the container stops."""

    def __init__(self, limit: int = 20_000) -> None:
        self.lines: deque[str] = deque(maxlen=limit)
        self.closed = False
        self._changed = asyncio.Event()

    def write(self, line: str) -> None:
        for part in str(line).splitlines() or [""]:
            self.lines.append(part)
        self._changed.set()

    def close(self) -> None:
        self.closed = True
        self._changed.set()

    def text(self) -> str:
        return "".join(line + "\n" for line in self.lines)

    async def read(self, tail_lines: int | None = None, follow: bool = False) -> AsyncIterator[str]:
        lines = list(self.lines)
        if tail_lines is not None:
            lines = lines[-tail_lines:] if tail_lines > 0 else []
        for line in lines:
            yield line + "\n"
        seen = len(self.lines)
        while follow and not self.closed:
            self._changed.clear()
            await self._changed.wait()
            now = list(self.lines)
            for line in now[seen:]:
                yield line + "\n"
            seen = len(now)
