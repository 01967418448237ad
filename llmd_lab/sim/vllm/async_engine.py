"""``AsyncLLM``: the step engine driven by a clock on an asyncio loop, with one output stream per request.

Simulated time follows the wall clock scaled by ``time_scale`` (:class:`RealClock`): a step that takes 20 ms on
the simulated GPU sleeps ``20 ms / time_scale``. Short steps are not slept one by one: the engine may run ahead
of the clock by up to ``quantum_s`` of wall time before it sleeps off the lead, which keeps the number of
wake-ups (the cost that matters when many replicas share one loop) low; outputs are then at most that quantum
early. Every timestamp a request carries is in simulated seconds.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from llmd_lab.sim.vllm.engine import EngineRequest, EngineStats, LLMEngine, RequestOutput, StepResult


class Clock(Protocol):
    """Simulated time: ``now()`` in simulated seconds; ``sleep`` takes simulated seconds."""

    time_scale: float

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class RealClock:
    """Wall-clock time compressed by ``time_scale`` (20 means one wall second is 20 simulated seconds)."""

    def __init__(self, time_scale: float = 1.0) -> None:
        if time_scale <= 0:
            raise ValueError(f"time_scale must be positive, got {time_scale}")
        self.time_scale = time_scale
        self._loop_time = asyncio.get_running_loop().time
        self._t0 = self._loop_time()

    def now(self) -> float:
        return (self._loop_time() - self._t0) * self.time_scale

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.time_scale)


StepObserver = Callable[[StepResult, EngineStats], None]


class AsyncLLM:
    """Runs :class:`LLMEngine` steps in a background task; ``generate`` streams one request's outputs."""

    def __init__(self, engine: LLMEngine, clock: Clock, *, quantum_s: float = 0.002) -> None:
        self.engine = engine
        self.clock = clock
        self.quantum_s = quantum_s
        self.observers: list[StepObserver] = []
        self._queues: dict[str, asyncio.Queue[RequestOutput | None]] = {}
        self._has_work = asyncio.Event()
        self._cursor = 0.0
        self._ids = itertools.count()
        self._task: asyncio.Task[None] | None = None
        self.errored: BaseException | None = None

    @property
    def tokenizer(self):
        return self.engine.tokenizer

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="vllm-engine-core")

    async def shutdown(self) -> None:
        """Stop the engine loop and abort whatever is still in flight."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            except Exception:  # already recorded in ``errored`` and reported to every stream
                pass
            self._task = None
        for request_id in list(self._queues):
            self.engine.abort_request(request_id)

    def new_request_id(self, prefix: str = "cmpl") -> str:
        return f"{prefix}-{next(self._ids):08x}"

    def now(self) -> float:
        return max(self._cursor, self.clock.now())

    def generate(self, request: EngineRequest) -> AsyncIterator[RequestOutput]:
        """Add ``request`` now (its arrival is stamped now) and return the stream of its outputs.

        The request is validated and queued before this returns (``ValueError`` for a prompt the engine
        refuses), so a server can answer 400 before it starts a response. Closing the stream early (a client
        that went away) aborts the request and frees its blocks.
        """
        if self.errored is not None:
            raise RuntimeError(f"the engine has stopped after an error: {self.errored!r}")
        self.start()
        stamped = EngineRequest(
            request.request_id,
            request.prompt_token_ids,
            request.sampling_params,
            self.now(),
            request.cache_salt,
        )
        self.engine.add_request(stamped)
        queue: asyncio.Queue[RequestOutput | None] = asyncio.Queue()
        self._queues[request.request_id] = queue
        self._has_work.set()
        return self._stream(request.request_id, queue)

    async def _stream(
        self, request_id: str, queue: asyncio.Queue[RequestOutput | None]
    ) -> AsyncIterator[RequestOutput]:
        finished = False
        try:
            while not finished:
                output = await queue.get()
                if output is None:
                    raise RuntimeError(f"the engine has stopped after an error: {self.errored!r}")
                finished = output.finished
                yield output
        finally:
            self._queues.pop(request_id, None)
            if not finished:
                self.engine.abort_request(request_id)
                self._has_work.set()

    async def _run(self) -> None:
        engine, clock = self.engine, self.clock
        try:
            while True:
                if not engine.has_unfinished_requests():
                    self._has_work.clear()
                    await self._has_work.wait()
                now = max(self._cursor, clock.now())
                result = engine.step(now)
                self._cursor = now + result.duration_s
                for observer in self.observers:
                    observer(result, engine.stats())
                lead = self._cursor - clock.now()
                if lead > self.quantum_s * clock.time_scale:
                    await clock.sleep(lead)
                else:
                    await asyncio.sleep(0)
                for output in result.outputs:
                    queue = self._queues.get(output.request_id)
                    if queue is not None:
                        queue.put_nowait(output)
                if result.duration_s == 0 and not result.outputs and engine.has_unfinished_requests():
                    # nothing could be scheduled (should not happen: start-up checks that a request fits)
                    await clock.sleep(0.01)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # surface engine bugs to every waiting stream instead of hanging them
            self.errored = exc
            for queue in self._queues.values():
                queue.put_nowait(None)
            raise
