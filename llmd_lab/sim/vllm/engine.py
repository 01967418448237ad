"""The simulated vLLM engine: a pure, deterministic step function.

``LLMEngine.step(now)`` runs one iteration of continuous batching: schedule, cost the batch with
:mod:`physics`, "sample" one token for every sequence whose prompt is fully computed, detect stops, free
finished requests, emit KV events. It reads no clock and does no I/O — the caller says what simulated time
the step starts at and advances by ``StepResult.duration_s`` — so the same engine runs under real time
(:mod:`async_engine`), a discrete-event simulator, or a unit test.

Generated text is deterministic: each request's words come from a fixed word list driven by a random stream
seeded by (engine seed, prompt tokens), so the same prompt gets the same answer, as with greedy decoding.
Unless ``ignore_eos``, a request ends with EOS after a length drawn from the same stream.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field, replace

import xxhash

from llmd_lab.sim.vllm import physics
from llmd_lab.sim.vllm.kv_cache_manager import KVCacheManager, cdiv
from llmd_lab.sim.vllm.kv_cache_utils import init_none_hash
from llmd_lab.sim.vllm.kv_events import KVEventBatch, KVEventSink
from llmd_lab.sim.vllm.profiles import GPUProfile, ModelProfile
from llmd_lab.sim.vllm.request import Request, RequestStatus, SamplingParams
from llmd_lab.sim.vllm.scheduler import Scheduler, SchedulerConfig
from llmd_lab.sim.vllm.tokenizer import Tokenizer

_WORDS = (
    "the model answers with a short and clear explanation of how prefix caching helps requests that share "
    "context so the cache keeps blocks of tokens on the GPU and the router sends each request to the replica "
    "that already holds its prefix which lowers time to first token while throughput stays high under load"
).split()


def default_scheduler_limits(gpu: GPUProfile) -> tuple[int, int]:
    """vLLM's defaults for the OpenAI server: (max_num_batched_tokens, max_num_seqs) by GPU memory class."""
    if gpu.memory_bytes >= 70 * physics.GiB:
        return 8192, 1024
    return 2048, 256


@dataclass(frozen=True)
class EngineConfig:
    """Engine settings; names follow vLLM's ``--flags`` (``max_num_seqs`` ↔ ``--max-num-seqs``)."""

    model: ModelProfile
    gpu: GPUProfile
    served_model_name: str | None = None
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9
    max_model_len: int | None = None  # default: the model's max_position_embeddings
    max_num_seqs: int | None = None  # default: by GPU memory class, as vLLM
    max_num_batched_tokens: int | None = None
    block_size: int = 16
    enable_prefix_caching: bool = True
    enable_chunked_prefill: bool = True
    long_prefill_token_threshold: int = 0
    num_gpu_blocks_override: int | None = None
    python_hash_seed: str | None = field(default_factory=lambda: os.environ.get("PYTHONHASHSEED"))
    enable_kv_cache_events: bool = False
    mfu: float = physics.DEFAULT_MFU
    bandwidth_efficiency: float = physics.DEFAULT_BANDWIDTH_EFFICIENCY
    step_overhead_s: float = physics.DEFAULT_STEP_OVERHEAD_S
    per_seq_overhead_s: float = physics.DEFAULT_PER_SEQ_OVERHEAD_S
    frontend_request_s: float = physics.DEFAULT_FRONTEND_REQUEST_S
    frontend_per_running_seq_s: float = physics.DEFAULT_FRONTEND_PER_RUNNING_SEQ_S
    mean_output_len: int = 128  # typical natural answer length (tokens) before EOS when max_tokens allows

    def resolved(self) -> EngineConfig:
        """A copy with every default filled in."""
        tokens, seqs = default_scheduler_limits(self.gpu)
        max_model_len = self.max_model_len or self.model.max_position_embeddings
        max_batched = self.max_num_batched_tokens or tokens
        if not self.enable_chunked_prefill:
            max_batched = max(max_batched, max_model_len)
        return replace(
            self,
            served_model_name=self.served_model_name or self.model.name,
            max_model_len=max_model_len,
            max_num_seqs=self.max_num_seqs or seqs,
            max_num_batched_tokens=max_batched,
        )

    def memory_plan(self) -> physics.MemoryPlan:
        cfg = self.resolved()
        return physics.plan_memory(
            cfg.model,
            cfg.gpu,
            tensor_parallel_size=cfg.tensor_parallel_size,
            gpu_memory_utilization=cfg.gpu_memory_utilization,
            block_size=cfg.block_size,
            max_num_batched_tokens=cfg.max_num_batched_tokens or 0,
            max_num_seqs=cfg.max_num_seqs or 0,
        )


@dataclass(frozen=True)
class EngineRequest:
    """A request as the server hands it to the engine."""

    request_id: str
    prompt_token_ids: list[int]
    sampling_params: SamplingParams = field(default_factory=SamplingParams)
    arrival_time: float = 0.0
    cache_salt: str | None = None


@dataclass(frozen=True)
class RequestOutput:
    """One request's progress in one step (simulated seconds throughout)."""

    request_id: str
    new_token_ids: list[int]
    text: str  # the delta produced this step
    finished: bool
    finish_reason: str | None
    num_prompt_tokens: int
    num_cached_tokens: int
    num_output_tokens: int
    arrival_time: float
    scheduled_time: float | None
    first_token_time: float | None
    finish_time: float | None
    token_time: float  # when this output's tokens came out
    prev_token_time: float | None  # when the request's previous token came out (for inter-token latency)
    stop_reason: str | None = None


@dataclass(frozen=True)
class StepResult:
    duration_s: float
    outputs: list[RequestOutput]
    num_scheduled_tokens: int = 0
    num_preempted: int = 0


class LLMEngine:
    """Deterministic step engine over a paged, prefix-cached KV cache."""

    def __init__(
        self, config: EngineConfig, *, seed: int = 0, kv_event_sink: KVEventSink | None = None
    ) -> None:
        self.config = config.resolved()
        cfg = self.config
        assert cfg.max_model_len is not None and cfg.max_num_seqs and cfg.max_num_batched_tokens
        self.seed = seed
        self.kv_event_sink = kv_event_sink
        self.tokenizer = Tokenizer()
        for word in _WORDS:
            self.tokenizer.token_id(" " + word)
        self.memory = cfg.memory_plan()
        self.num_gpu_blocks = cfg.num_gpu_blocks_override or self.memory.num_gpu_blocks
        self.kv_cache_manager = KVCacheManager(
            self.num_gpu_blocks,
            cfg.block_size,
            enable_caching=cfg.enable_prefix_caching,
            none_hash=init_none_hash(cfg.python_hash_seed, seed=seed),
            enable_kv_cache_events=cfg.enable_kv_cache_events or kv_event_sink is not None,
        )
        self.scheduler = Scheduler(
            SchedulerConfig(
                max_num_seqs=cfg.max_num_seqs,
                max_num_batched_tokens=cfg.max_num_batched_tokens,
                max_model_len=cfg.max_model_len,
                enable_chunked_prefill=cfg.enable_chunked_prefill,
                long_prefill_token_threshold=cfg.long_prefill_token_threshold,
            ),
            self.kv_cache_manager,
        )
        self._rngs: dict[str, random.Random] = {}
        self._eos_at: dict[str, int] = {}
        self._pending_aborts: list[RequestOutput] = []
        # Requests still in the API server (tokenising, IPC): (time they reach the scheduler, request).
        self._arriving: list[tuple[float, Request]] = []
        self.num_prompt_tokens_total = 0
        self.num_generation_tokens_total = 0
        self.num_steps = 0

    # -- requests -------------------------------------------------------------------------------------------
    def add_request(self, req: EngineRequest) -> None:
        """Queue a request; raises ``ValueError`` for an empty or too-long prompt or a duplicate id."""
        cfg = self.config
        assert cfg.max_model_len is not None
        n = len(req.prompt_token_ids)
        if n == 0:
            raise ValueError("the prompt is empty")
        if n >= cfg.max_model_len:
            raise ValueError(
                f"The decoder prompt (length {n}) is longer than the maximum model length of {cfg.max_model_len}."
            )
        if cdiv(n + 1, cfg.block_size) > self.num_gpu_blocks - 1:
            raise ValueError(
                f"prompt of {n} tokens can never fit in the KV cache ({self.num_gpu_blocks} blocks)"
            )
        held = any(r.request_id == req.request_id for _, r in self._arriving)
        if req.request_id in self.scheduler.requests or held:
            raise ValueError(f"request id {req.request_id!r} is already in use")
        request = Request(
            request_id=req.request_id,
            prompt_token_ids=list(req.prompt_token_ids),
            sampling_params=req.sampling_params,
            arrival_time=req.arrival_time,
            cache_salt=req.cache_salt,
        )
        digest = xxhash.xxh64_intdigest(repr((self.seed, req.prompt_token_ids)).encode())
        rng = random.Random(digest)
        self._rngs[req.request_id] = rng
        mean = cfg.mean_output_len
        self._eos_at[req.request_id] = max(1, round(rng.gauss(mean, mean / 2)))
        ready = req.arrival_time + physics.frontend_delay_s(
            len(self.scheduler.running) + len(self._arriving),
            frontend_request_s=cfg.frontend_request_s,
            frontend_per_running_seq_s=cfg.frontend_per_running_seq_s,
        )
        self._arriving.append((ready, request))

    def _admit(self, now: float) -> float | None:
        """Hand the scheduler every request whose front-end work is done by ``now``; next ready time if any."""
        if not self._arriving:
            return None
        ready = [(t, r) for t, r in self._arriving if t <= now + 1e-12]
        self._arriving = [(t, r) for t, r in self._arriving if t > now + 1e-12]
        for _, request in sorted(ready, key=lambda tr: tr[0]):
            self.scheduler.add_request(request)
        return min((t for t, _ in self._arriving), default=None)

    def abort_request(self, request_id: str) -> bool:
        """Stop a request and free its blocks; its final output (``abort``) comes with the next step."""
        request = self.scheduler.requests.get(request_id)
        if request is None:
            held = [r for _, r in self._arriving if r.request_id == request_id]
            if not held:
                return False
            request = held[0]
            self._arriving = [(t, r) for t, r in self._arriving if r.request_id != request_id]
            request.status = RequestStatus.FINISHED_ABORTED
            self._forget(request_id)
            self._pending_aborts.append(self._output(request, [], "", request.arrival_time, None))
            return True
        self.scheduler.finish_request(request, RequestStatus.FINISHED_ABORTED)
        self._forget(request_id)
        last = request.last_token_time
        self._pending_aborts.append(
            self._output(request, [], "", last if last is not None else request.arrival_time, None)
        )
        return True

    def has_unfinished_requests(self) -> bool:
        return self.scheduler.has_unfinished_requests() or bool(self._pending_aborts) or bool(self._arriving)

    def get_num_unfinished_requests(self) -> int:
        return len(self.scheduler.waiting) + len(self.scheduler.running) + len(self._arriving)

    def _forget(self, request_id: str) -> None:
        self._rngs.pop(request_id, None)
        self._eos_at.pop(request_id, None)

    # -- the step -------------------------------------------------------------------------------------------
    def step(self, now: float) -> StepResult:
        """Run one engine iteration starting at simulated time ``now``."""
        outputs, self._pending_aborts = self._pending_aborts, []
        next_ready = self._admit(now)
        sched = self.scheduler.schedule(now)
        reqs = sched.scheduled_reqs
        if not reqs:
            self._flush_events(now)
            # Nothing to run yet but a request is still in the front end: idle until it reaches the scheduler.
            idle = 0.0 if next_ready is None or outputs else next_ready - now
            return StepResult(idle, outputs, 0, len(sched.preempted_reqs))
        cfg = self.config
        work = [
            physics.SeqWork(sched.num_scheduled_tokens[r.request_id], sched.num_context_tokens[r.request_id])
            for r in reqs
        ]
        duration = physics.step_time(
            cfg.model,
            cfg.gpu,
            cfg.tensor_parallel_size,
            work,
            mfu=cfg.mfu,
            bandwidth_efficiency=cfg.bandwidth_efficiency,
            step_overhead_s=cfg.step_overhead_s,
            per_seq_overhead_s=cfg.per_seq_overhead_s,
        )
        end = now + duration
        self.num_steps += 1
        for request in reqs:
            if request.num_computed_tokens < request.num_tokens:
                continue  # a prefill chunk: no token yet
            if request.num_output_tokens == 0 and request.num_preemptions == 0:
                self.num_prompt_tokens_total += request.num_prompt_tokens
            token_id, piece = self._sample(request)
            prev = request.last_token_time
            request.output_token_ids.append(token_id)
            self.num_generation_tokens_total += 1
            if request.first_token_time is None:
                request.first_token_time = end
            request.last_token_time = end
            old_len = len(request.output_text)
            request.output_text += piece
            status = self._check_stop(request, token_id)
            delta = request.output_text[old_len:]
            if status is not None:
                request.finished_time = end
                self.scheduler.finish_request(request, status)
                self._forget(request.request_id)
            else:
                self.kv_cache_manager.cache_blocks(request, request.num_computed_tokens)
            outputs.append(self._output(request, [token_id], delta, end, prev))
        self._flush_events(end)
        return StepResult(duration, outputs, sched.total_num_scheduled_tokens, len(sched.preempted_reqs))

    def _sample(self, request: Request) -> tuple[int, str]:
        sp = request.sampling_params
        n_out = request.num_output_tokens
        if not sp.ignore_eos and n_out + 1 >= max(sp.min_tokens + 1, self._eos_at[request.request_id] + 1):
            return self.tokenizer.eos_token_id, ""
        rng = self._rngs[request.request_id]
        word = rng.choice(_WORDS)
        piece = (" " if n_out else "") + word
        if rng.random() < 0.08:  # punctuation is a token of its own, as the shared tokenizer splits it
            piece = rng.choice((".", ",", "."))
        return self.tokenizer.token_id(piece), piece

    def _check_stop(self, request: Request, token_id: int) -> RequestStatus | None:
        sp = request.sampling_params
        if token_id == self.tokenizer.eos_token_id and not sp.ignore_eos:
            return RequestStatus.FINISHED_STOPPED
        if sp.stop and request.num_output_tokens >= sp.min_tokens:
            for stop in sp.stop:
                at = request.output_text.find(stop)
                if at >= 0:
                    request.output_text = request.output_text[:at]
                    request.stop_reason = stop
                    return RequestStatus.FINISHED_STOPPED
        if request.num_output_tokens >= sp.max_tokens:
            return RequestStatus.FINISHED_LENGTH_CAPPED
        assert self.config.max_model_len is not None
        if request.num_tokens >= self.config.max_model_len:
            return RequestStatus.FINISHED_LENGTH_CAPPED
        return None

    def _output(
        self, request: Request, token_ids: list[int], delta: str, token_time: float, prev: float | None
    ) -> RequestOutput:
        return RequestOutput(
            request_id=request.request_id,
            new_token_ids=token_ids,
            text=delta,
            finished=request.is_finished,
            finish_reason=request.finish_reason,
            num_prompt_tokens=request.num_prompt_tokens,
            num_cached_tokens=max(0, request.num_cached_tokens),
            num_output_tokens=request.num_output_tokens,
            arrival_time=request.arrival_time,
            scheduled_time=request.scheduled_time,
            first_token_time=request.first_token_time,
            finish_time=request.finished_time if request.is_finished else None,
            token_time=token_time,
            prev_token_time=prev,
            stop_reason=request.stop_reason,
        )

    def _flush_events(self, ts: float) -> None:
        events = self.kv_cache_manager.take_events()
        if events and self.kv_event_sink is not None:
            self.kv_event_sink(KVEventBatch(ts=ts, events=events))

    # -- introspection --------------------------------------------------------------------------------------
    def reset_prefix_cache(self) -> bool:
        return self.kv_cache_manager.reset_prefix_cache()

    def stats(self) -> EngineStats:
        pcs = self.kv_cache_manager.prefix_cache_stats
        cfg = self.config
        return EngineStats(
            num_running_reqs=len(self.scheduler.running),
            num_waiting_reqs=len(self.scheduler.waiting),
            kv_cache_usage=self.kv_cache_manager.usage,
            prefix_cache_queries=pcs.queries,
            prefix_cache_hits=pcs.hits,
            num_preemptions=self.scheduler.num_preemptions,
            num_prompt_tokens=self.num_prompt_tokens_total,
            num_generation_tokens=self.num_generation_tokens_total,
            num_gpu_blocks=self.num_gpu_blocks,
            block_size=cfg.block_size,
            max_model_len=cfg.max_model_len or 0,
            max_num_seqs=cfg.max_num_seqs or 0,
            max_num_batched_tokens=cfg.max_num_batched_tokens or 0,
            num_steps=self.num_steps,
        )


@dataclass(frozen=True)
class EngineStats:
    num_running_reqs: int
    num_waiting_reqs: int
    kv_cache_usage: float
    prefix_cache_queries: int
    prefix_cache_hits: int
    num_preemptions: int
    num_prompt_tokens: int
    num_generation_tokens: int
    num_gpu_blocks: int
    block_size: int
    max_model_len: int
    max_num_seqs: int
    max_num_batched_tokens: int
    num_steps: int

    # short aliases the brief and other parts use
    @property
    def running(self) -> int:
        return self.num_running_reqs

    @property
    def waiting(self) -> int:
        return self.num_waiting_reqs
