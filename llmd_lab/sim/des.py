"""Discrete-event (virtual time) driver: N simulated vLLM engines, arrivals, a router, metric scrapes.

Benchmarks and the planner need thousands of requests in seconds of wall time, deterministically.
Nothing here sleeps: an event heap advances simulated time to the next arrival, engine step end, or
metrics scrape. Engines are the real :class:`~llmd_lab.sim.vllm.engine.LLMEngine` step functions; the
EPP router is the real :class:`~llmd_lab.sim.epp.director.Director` reading metrics through the same
``{metric name: samples}`` structure and name flags as the HTTP scraper, refreshed every
``scrape_interval`` simulated seconds, and (for the precise scorer) fed the engines' KV events.

Workloads are sessions: a sequence of chat turns that each resend the whole conversation. Sessions
either start at given times (open loop, e.g. Poisson) or are worked through by ``concurrency``
workers (closed loop, like the step-08 benchmark's 4 workers). With ``interleave_turns`` a worker sends
one turn and puts the conversation back at the end of the queue, waiting a think time drawn from
``think_time`` before each turn (the reference repository's multi-turn benchmark).
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from llmd_lab.sim.epp.config import load_config
from llmd_lab.sim.epp.director import Director, EppError, extract_prompt
from llmd_lab.sim.epp.plugins.base import PluginHandle
from llmd_lab.sim.epp.plugins.precise_prefix import PrecisePrefixCacheScorer
from llmd_lab.sim.epp.scraper import MetricNames, apply_samples
from llmd_lab.sim.epp.types import Endpoint
from llmd_lab.sim.vllm.engine import EngineConfig, EngineRequest, LLMEngine, StepResult
from llmd_lab.sim.vllm.kv_cache_utils import hash_request_tokens
from llmd_lab.sim.vllm.kv_events import KVEventBatch
from llmd_lab.sim.vllm.request import SamplingParams
from llmd_lab.sim.vllm.serving import OpenAIError, check_context_length
from llmd_lab.sim.vllm.tokenizer import Tokenizer

# What the simulated vLLM exposes (both KV names, as vLLM 0.10 does), so flag mistakes show up here too.
DEFAULT_EXPOSED_KV_METRICS = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")


@dataclass
class SimSession:
    """One conversation. ``start`` None = handed to the next free worker (closed loop)."""

    turns: list[str]
    system: str | None = None
    max_tokens: int = 128
    start: float | None = None
    think_time_s: float = 0.0
    ignore_eos: bool = False  # True: exactly max_tokens out (benchmark shapes like "256 in / 256 out")
    tags: dict[str, Any] = field(default_factory=dict)


@dataclass
class SimRequest:
    """A request as a router sees it: the OpenAI body, its token ids, and who sent it."""

    request_id: str
    body: dict[str, Any]
    prompt: str                  # GIE's flattened prompt (what the EPP hashes)
    prompt_token_ids: list[int]  # what the engine sees (chat template applied)
    model: str
    session: int
    turn: int
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class RequestRecord:
    """Outcome of one request, in simulated seconds."""

    request_id: str
    session: int
    turn: int
    replica: str
    arrival: float
    prompt_tokens: int
    first_token: float | None = None
    finish: float | None = None
    cached_tokens: int = 0
    output_tokens: int = 0
    itl: list[float] = field(default_factory=list)
    error: str | None = None
    tags: dict[str, Any] = field(default_factory=dict)

    @property
    def ttft(self) -> float | None:
        return None if self.first_token is None else self.first_token - self.arrival


@dataclass
class Replica:
    """One engine and the identity the EPP knows it by (pod name, IP, labels, scraped metrics)."""

    index: int
    engine: LLMEngine
    endpoint: Endpoint
    stepping: bool = False
    ready: bool = True

    @property
    def name(self) -> str:
        return self.endpoint.name


class Router(Protocol):
    def route(self, request: SimRequest, replicas: Sequence[Replica], now: float) -> Replica: ...


class RoundRobinRouter:
    """kube-proxy's round robin over ready endpoints: the workshop's baseline."""

    def __init__(self) -> None:
        self._next = 0

    def route(self, request, replicas, now):
        ready = [r for r in replicas if r.ready]
        choice = ready[self._next % len(ready)]
        self._next += 1
        return choice


class RandomRouter:
    """kube-proxy's iptables mode: a uniformly random ready endpoint."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)

    def route(self, request, replicas, now):
        return self.rng.choice([r for r in replicas if r.ready])


class EppRouter:
    """The EPP (any EndpointPickerConfig) in the loop, with scraped metrics and KV events."""

    def __init__(self, config_text: str, *, seed: int = 0, metric_names: MetricNames | None = None,
                 tokenizer: Tokenizer | None = None) -> None:
        self.metric_names = metric_names or MetricNames()
        self.tokenizer = tokenizer or Tokenizer()
        self.now = 0.0
        self.handle = PluginHandle(clock=lambda: self.now, rng=random.Random(seed),
                                   tokenizer_for=lambda model: self.tokenizer)
        self.config = load_config(config_text, self.handle)
        self.precise = [p for p in self.config.plugins.values() if isinstance(p, PrecisePrefixCacheScorer)]
        self.replicas: Sequence[Replica] = ()
        self.director = Director(self.config, lambda: [r.endpoint for r in self.replicas if r.ready],
                                 target_port=lambda: 8000, clock=lambda: self.now)
        self.rejected = 0

    def route(self, request, replicas, now):
        self.now = now
        self.replicas = replicas
        decision = self.director.handle_request({"x-request-id": request.request_id, **request.headers},
                                                request.body)
        # v1.0.0 runs PostResponse when the response headers arrive: vLLM sends them at once when streaming.
        self.director.handle_response(request.request_id, {})
        return next(r for r in replicas if r.endpoint == decision.endpoint)

    def on_kv_events(self, replica: Replica, model: str, batch: KVEventBatch) -> None:
        if self.precise:
            payload = batch.encode()
            for scorer in self.precise:
                scorer.apply_events(replica.endpoint.address, model, payload)


class OracleRouter:
    """Benchmark-only ceiling: reads every engine's exact cache and queue, minimises the prefill work.

    Cost (in tokens) = uncached prompt tokens + prompt tokens still waiting to be computed on that
    replica + ``running_weight`` per running sequence. No real router can know this.
    """

    def __init__(self, running_weight: float = 16.0) -> None:
        self.running_weight = running_weight

    @staticmethod
    def cached_tokens(engine: LLMEngine, tokens: list[int]) -> int:
        kv = engine.kv_cache_manager
        hits = 0
        for h in hash_request_tokens(kv.none_hash, kv.block_size, tokens):
            if kv.block_pool.get_cached_block(h) is None:
                break
            hits += kv.block_size
        return hits

    def route(self, request, replicas, now):
        best, best_cost = None, float("inf")
        for r in replicas:
            if not r.ready:
                continue
            sched = r.engine.scheduler
            backlog = sum(q.num_tokens - q.num_computed_tokens for q in list(sched.waiting) + list(sched.running)
                          if q.num_computed_tokens < q.num_prompt_tokens)
            uncached = len(request.prompt_token_ids) - self.cached_tokens(r.engine, request.prompt_token_ids)
            cost = uncached + backlog + self.running_weight * len(sched.running)
            if cost < best_cost:
                best, best_cost = r, cost
        assert best is not None
        return best


class Simulation:
    """Run sessions against ``replicas`` engines behind ``router`` in virtual time."""

    def __init__(
        self,
        engine_config: EngineConfig,
        replicas: int,
        router: Router,
        *,
        seed: int = 0,
        scrape_interval: float = 0.05,
        exposed_kv_metrics: Sequence[str] = DEFAULT_EXPOSED_KV_METRICS,
        tokenizer: Tokenizer | None = None,
        namespace: str = "llm",
    ) -> None:
        self.router = router
        self.scrape_interval = scrape_interval
        self.exposed_kv_metrics = tuple(exposed_kv_metrics)
        self.tokenizer = tokenizer or Tokenizer()
        self.now = 0.0
        names = getattr(router, "metric_names", None) or MetricNames()
        self.specs = names.specs()
        self.replicas: list[Replica] = []
        for i in range(replicas):
            endpoint = Endpoint(f"replica-{i}", namespace, f"10.0.0.{i + 1}", 8000,
                                labels={"llm-d.ai/role": "both"})
            replica = Replica(i, None, endpoint)  # type: ignore[arg-type]
            sink = self._sink(replica)
            replica.engine = LLMEngine(engine_config, seed=seed, kv_event_sink=sink)
            self.replicas.append(replica)
        self.model = self.replicas[0].engine.config.served_model_name or ""
        self._heap: list[tuple[float, int, str, Any]] = []
        self._seq = itertools.count()
        self.records: dict[str, RequestRecord] = {}
        self._owner: dict[str, tuple[int, int]] = {}  # request id -> (session, turn)
        self._history: dict[int, list[dict[str, str]]] = {}
        self._replies: dict[str, list[str]] = {}

    def _sink(self, replica: Replica) -> Callable[[KVEventBatch], None] | None:
        handler = getattr(self.router, "on_kv_events", None)
        if handler is None:
            return None
        return lambda batch: handler(replica, self.model, batch)

    # -- event plumbing ------------------------------------------------------------------------------------
    def _push(self, at: float, kind: str, payload: Any = None) -> None:
        heapq.heappush(self._heap, (at, next(self._seq), kind, payload))

    def scrape(self) -> None:
        """Refresh every endpoint's metrics from its engine (the structure a /metrics scrape yields)."""
        for r in self.replicas:
            stats = r.engine.stats()
            samples = {
                "vllm:num_requests_waiting": [({}, float(stats.num_waiting_reqs))],
                "vllm:num_requests_running": [({}, float(stats.num_running_reqs))],
            }
            for name in self.exposed_kv_metrics:
                samples[name] = [({}, stats.kv_cache_usage)]
            apply_samples(r.endpoint.metrics, samples, self.specs, self.now)

    # -- sessions ------------------------------------------------------------------------------------------
    def run(self, sessions: Sequence[SimSession], *, concurrency: int | None = None, interleave_turns: bool = False,
            think_time: tuple[float, float] = (0.0, 0.0), max_events: int = 50_000_000) -> list[RequestRecord]:
        self.sessions = list(sessions)
        self._queue = deque(i for i, s in enumerate(self.sessions) if s.start is None)
        self._interleave = interleave_turns
        self._think = think_time
        self._think_rng = random.Random(f"think-{len(self.sessions)}")
        self._next_turn = [0] * len(self.sessions)
        self._idle_workers = 0
        for i, s in enumerate(self.sessions):
            if s.start is not None:
                self._push(s.start, "turn", (i, 0))
        for _ in range(concurrency or 0):
            self._next_session(0.0)
        self.scrape()
        self._push(self.scrape_interval, "scrape")
        for _ in range(max_events):
            if not self._heap:
                break
            self.now, _, kind, payload = heapq.heappop(self._heap)
            if kind == "turn":
                self._arrive(*payload)
            elif kind == "step":
                self._step_done(*payload)
            elif kind == "scrape":
                self.scrape()
                if any(k != "scrape" for _, _, k, _ in self._heap):
                    self._push(self.now + self.scrape_interval, "scrape")
        return sorted(self.records.values(), key=lambda r: (r.arrival, r.request_id))

    def _next_session(self, now: float) -> None:
        """A free worker takes the next conversation (its next turn when turns interleave)."""
        if not self._queue:
            self._idle_workers += 1
            return
        session = self._queue.popleft()
        delay = self._think_rng.uniform(*self._think) if self._interleave else 0.0
        self._push(now + delay, "turn", (session, self._next_turn[session]))

    def _arrive(self, session: int, turn: int) -> None:
        s = self.sessions[session]
        history = self._history.setdefault(session, [{"role": "system", "content": s.system}] if s.system else [])
        history.append({"role": "user", "content": s.turns[turn]})
        body = {"model": self.model, "messages": list(history), "max_tokens": s.max_tokens, "stream": True}
        tokens = self.tokenizer.encode(self.tokenizer.apply_chat_template(history))
        rid = f"s{session}-t{turn}"
        request = SimRequest(rid, body, extract_prompt(body), tokens, self.model, session, turn)
        record = RequestRecord(rid, session, turn, "", self.now, len(tokens), tags=dict(s.tags))
        self.records[rid] = record
        self._owner[rid] = (session, turn)
        try:
            replica = self.router.route(request, self.replicas, self.now)
        except EppError as exc:
            record.error = f"{exc.status} {exc.message}"
            self._finish_turn(session, turn, "")
            return
        record.replica = replica.name
        try:  # the pod's API server first, then its engine, as in vLLM
            check_context_length(replica.engine.config.max_model_len, len(tokens), s.max_tokens)
        except OpenAIError as exc:
            record.error = f"{exc.status} {exc.message}"
            self._finish_turn(session, turn, "")
            return
        try:
            replica.engine.add_request(EngineRequest(
                rid, tokens, SamplingParams(max_tokens=s.max_tokens, ignore_eos=s.ignore_eos), arrival_time=self.now))
        except ValueError as exc:  # vLLM answers 400 (e.g. prompt longer than --max-model-len)
            record.error = f"400 {exc}"
            self._finish_turn(session, turn, "")
            return
        self._replies[rid] = []
        if not replica.stepping:
            self._start_step(replica)

    def _start_step(self, replica: Replica) -> None:
        result = replica.engine.step(self.now)
        if result.duration_s <= 0 and not result.outputs:
            replica.stepping = False
            return
        replica.stepping = True
        self._push(self.now + result.duration_s, "step", (replica.index, result))

    def _step_done(self, index: int, result: StepResult) -> None:
        replica = self.replicas[index]
        for out in result.outputs:
            record = self.records[out.request_id]
            if out.first_token_time is not None and record.first_token is None:
                record.first_token = out.first_token_time
            if out.prev_token_time is not None and out.new_token_ids:
                record.itl.append(out.token_time - out.prev_token_time)
            self._replies[out.request_id].append(out.text)
            if out.finished:
                record.finish = out.finish_time
                record.cached_tokens = out.num_cached_tokens
                record.output_tokens = out.num_output_tokens
                session, turn = self._owner[out.request_id]
                self._finish_turn(session, turn, "".join(self._replies.pop(out.request_id)))
        replica.stepping = False
        if replica.engine.has_unfinished_requests():
            self._start_step(replica)

    def _finish_turn(self, session: int, turn: int, reply: str) -> None:
        s = self.sessions[session]
        self._history[session].append({"role": "assistant", "content": reply})
        self._next_turn[session] = turn + 1
        if self._interleave and s.start is None:
            if turn + 1 < len(s.turns):
                self._queue.append(session)
            else:
                self._history.pop(session, None)
            self._next_session(self.now)
            while self._idle_workers and self._queue:
                self._idle_workers -= 1
                self._next_session(self.now)
            return
        if turn + 1 < len(s.turns):
            self._push(self.now + s.think_time_s, "turn", (session, turn + 1))
        else:
            self._history.pop(session, None)
            if s.start is None:
                self._next_session(self.now)
