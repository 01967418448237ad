"""Continuous batching as vLLM v1 does it (``vllm/v1/core/sched/scheduler.py``).

Each step has a token budget (``max_num_batched_tokens``). Running requests go first, in order: each gets
what it still needs (one token when decoding, the rest of its prompt when prefilling), capped by the budget —
that cap is chunked prefill. If the KV cache cannot hold a running request's new tokens, the *last* running
request is preempted (blocks freed, progress reset: recompute) and put back at the front of the waiting queue,
until the request fits or was itself preempted. Only when nothing was preempted are waiting requests admitted,
in arrival order, while there is budget, a free sequence slot (``max_num_seqs``) and room in the cache; a
waiting request first looks up its longest cached prefix, whose tokens it does not compute again.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from llmd_lab.sim.vllm.kv_cache_manager import KVCacheManager
from llmd_lab.sim.vllm.request import Request, RequestStatus


@dataclass(frozen=True)
class SchedulerConfig:
    max_num_seqs: int
    max_num_batched_tokens: int
    max_model_len: int
    enable_chunked_prefill: bool = True
    long_prefill_token_threshold: int = 0


@dataclass
class SchedulerOutput:
    """What the model runs this step: tokens per request (new ones first, then continuing ones)."""

    scheduled_new_reqs: list[Request] = field(default_factory=list)
    scheduled_running_reqs: list[Request] = field(default_factory=list)
    preempted_reqs: list[Request] = field(default_factory=list)
    num_scheduled_tokens: dict[str, int] = field(default_factory=dict)
    # tokens each request had in its KV cache before this step (cached prefix or earlier chunks)
    num_context_tokens: dict[str, int] = field(default_factory=dict)

    @property
    def total_num_scheduled_tokens(self) -> int:
        return sum(self.num_scheduled_tokens.values())

    @property
    def scheduled_reqs(self) -> list[Request]:
        return self.scheduled_running_reqs + self.scheduled_new_reqs


class Scheduler:
    """Waiting and running queues over a :class:`KVCacheManager`."""

    def __init__(self, config: SchedulerConfig, kv_cache_manager: KVCacheManager) -> None:
        self.config = config
        self.kv_cache_manager = kv_cache_manager
        self.waiting: deque[Request] = deque()
        self.running: list[Request] = []
        self.requests: dict[str, Request] = {}
        self.num_preemptions = 0

    def add_request(self, request: Request) -> None:
        self.waiting.append(request)
        self.requests[request.request_id] = request

    def has_unfinished_requests(self) -> bool:
        return bool(self.waiting or self.running)

    def _num_new_tokens(self, request: Request, num_computed_tokens: int, token_budget: int) -> int:
        n = request.num_tokens - num_computed_tokens
        threshold = self.config.long_prefill_token_threshold
        if 0 < threshold < n:
            n = threshold
        return min(n, token_budget)

    def _preempt(self, output: SchedulerOutput) -> Request:
        victim = self.running.pop()
        self.kv_cache_manager.free(victim)
        victim.status = RequestStatus.PREEMPTED
        victim.num_computed_tokens = 0
        victim.num_preemptions += 1
        self.num_preemptions += 1
        self.waiting.appendleft(victim)
        output.preempted_reqs.append(victim)
        return victim

    def schedule(self, now: float) -> SchedulerOutput:
        """Pick this step's work; ``now`` stamps first-scheduled times (simulated seconds).

        Like vLLM V1: running requests first (preempting from the back when blocks run out), then, if nothing
        was preempted, waiting requests in order while the token budget and ``max_num_seqs`` allow.
        """
        output = SchedulerOutput()
        token_budget = self._schedule_running(output, self.config.max_num_batched_tokens)
        if not output.preempted_reqs:
            self._schedule_waiting(output, token_budget, now)
        for request in output.scheduled_reqs:
            request.num_computed_tokens += output.num_scheduled_tokens[request.request_id]
        return output

    def _allocate_or_preempt(self, request: Request, n: int, output: SchedulerOutput) -> bool:
        """Allocate ``n`` slots for a running request, preempting others (or itself: False) until they fit."""
        while self.kv_cache_manager.allocate_slots(request, n) is None:
            if self._preempt(output) is request:
                return False
        return True

    def _schedule_running(self, output: SchedulerOutput, token_budget: int) -> int:
        index = 0
        while index < len(self.running) and token_budget > 0:
            request = self.running[index]
            n = self._num_new_tokens(request, request.num_computed_tokens, token_budget)
            if n <= 0:
                index += 1
                continue
            if not self._allocate_or_preempt(request, n, output):
                break
            output.scheduled_running_reqs.append(request)
            output.num_context_tokens[request.request_id] = request.num_computed_tokens
            output.num_scheduled_tokens[request.request_id] = n
            token_budget -= n
            index += 1
        return token_budget

    def _schedule_waiting(self, output: SchedulerOutput, token_budget: int, now: float) -> None:
        while self.waiting and token_budget > 0 and len(self.running) < self.config.max_num_seqs:
            request = self.waiting[0]
            computed_blocks, num_hit_tokens = [], 0
            if request.num_computed_tokens == 0:
                computed_blocks, num_hit_tokens = self.kv_cache_manager.get_computed_blocks(request)
            num_computed = request.num_computed_tokens + num_hit_tokens
            if not self.config.enable_chunked_prefill and request.num_tokens - num_computed > token_budget:
                break
            n = self._num_new_tokens(request, num_computed, token_budget)
            if self.kv_cache_manager.allocate_slots(request, n, num_hit_tokens, computed_blocks) is None:
                break
            self.waiting.popleft()
            self.running.append(request)
            request.status = RequestStatus.RUNNING
            if request.num_cached_tokens < 0:
                request.num_cached_tokens = num_computed
            if request.scheduled_time is None:
                request.scheduled_time = now
            request.num_computed_tokens = num_computed
            output.scheduled_new_reqs.append(request)
            output.num_context_tokens[request.request_id] = num_computed
            output.num_scheduled_tokens[request.request_id] = n
            token_budget -= n

    def finish_request(self, request: Request, status: RequestStatus) -> None:
        """Take ``request`` out of the queues with a final status and free its blocks."""
        request.status = status
        if request in self.running:
            self.running.remove(request)
        elif request in self.waiting:
            self.waiting.remove(request)
        self.kv_cache_manager.free(request)
        self.requests.pop(request.request_id, None)
