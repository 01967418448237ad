"""Load generators for one simulated vLLM engine in virtual time, shaped like ``vllm bench serve``.

``closed_loop`` keeps ``concurrency`` requests in flight (``--max-concurrency C --request-rate inf``);
``poisson`` sends ``n`` requests at exponential gaps (``--request-rate R``, burstiness 1). Prompts are distinct
random token ids (the ``random`` dataset), so no request hits another's prefix cache. Nothing sleeps: the
engine's step durations advance the clock, so a sweep of thousands of requests takes seconds of wall time.
"""

from __future__ import annotations

import random
import statistics
from dataclasses import dataclass, field

from llmd_lab.sim.vllm.engine import EngineRequest, LLMEngine
from llmd_lab.sim.vllm.request import SamplingParams


@dataclass
class Trace:
    """What the benchmark client saw of one request (simulated seconds)."""

    arrival: float
    first_token: float | None = None
    token_times: list[float] = field(default_factory=list)
    finish: float | None = None


@dataclass
class LoadResult:
    """Per-request traces and the statistics ``vllm bench serve`` prints."""

    traces: list[Trace]

    @property
    def makespan(self) -> float:
        return max(t.finish or 0.0 for t in self.traces) - min(t.arrival for t in self.traces)

    def output_tok_s(self) -> float:
        return sum(len(t.token_times) for t in self.traces) / self.makespan

    def ttfts_ms(self) -> list[float]:
        return [1000 * (t.first_token - t.arrival) for t in self.traces if t.first_token is not None]

    def itls_ms(self) -> list[float]:
        return [1000 * (b - a) for t in self.traces for a, b in zip(t.token_times, t.token_times[1:], strict=False)]

    def tpots_ms(self) -> list[float]:
        return [1000 * (t.token_times[-1] - t.token_times[0]) / (len(t.token_times) - 1)
                for t in self.traces if len(t.token_times) > 1]  # fmt: skip

    def metric(self, name: str) -> float:
        """One of the statistics measurements.yaml names (see there)."""
        table = {
            "output_tok_s": self.output_tok_s,
            "ttft_p50_ms": lambda: statistics.median(self.ttfts_ms()),
            "ttft_mean_ms": lambda: statistics.fmean(self.ttfts_ms()),
            "itl_p50_ms": lambda: statistics.median(self.itls_ms()),
            "tpot_mean_ms": lambda: statistics.fmean(self.tpots_ms()),
            "decode_tok_s_per_request": lambda: 1000 / statistics.fmean(self.tpots_ms()),
        }
        if name not in table:
            raise ValueError(f"unknown metric {name!r}; known: {', '.join(table)}")
        return table[name]()


class _Driver:
    """Feeds requests to one engine and records what a streaming client would see."""

    def __init__(self, engine: LLMEngine, prompt_tokens: int, output_tokens: int, seed: int) -> None:
        self.engine = engine
        self.prompt_tokens = prompt_tokens
        self.params = SamplingParams(max_tokens=output_tokens, ignore_eos=True)
        self.rng = random.Random(seed)
        self.traces: dict[str, Trace] = {}

    def send(self, now: float) -> None:
        rid = f"r{len(self.traces)}"
        prompt = [self.rng.randrange(1000, 150_000) for _ in range(self.prompt_tokens)]
        self.traces[rid] = Trace(arrival=now)
        self.engine.add_request(EngineRequest(rid, prompt, self.params, arrival_time=now))

    def step(self, now: float) -> tuple[float, list[str]]:
        """Run one engine step from ``now``; returns its end and the ids that finished."""
        result = self.engine.step(now)
        end = now + result.duration_s
        done = []
        for out in result.outputs:
            trace = self.traces[out.request_id]
            if out.new_token_ids:
                trace.token_times.append(out.token_time)
                if trace.first_token is None:
                    trace.first_token = out.token_time
            if out.finished:
                trace.finish = out.finish_time
                done.append(out.request_id)
        return end, done


def closed_loop(engine: LLMEngine, concurrency: int, per_client: int, prompt_tokens: int, output_tokens: int,
                *, seed: int = 0) -> LoadResult:  # fmt: skip
    """``concurrency`` clients each send ``per_client`` requests back to back."""
    driver = _Driver(engine, prompt_tokens, output_tokens, seed)
    left = concurrency * per_client
    now = 0.0
    for _ in range(concurrency):
        driver.send(now)
        left -= 1
    while engine.has_unfinished_requests():
        now, done = driver.step(now)
        for _ in done:
            if left > 0:
                driver.send(now)
                left -= 1
    return LoadResult(list(driver.traces.values()))


def poisson(engine: LLMEngine, rate: float, n: int, prompt_tokens: int, output_tokens: int,
            *, seed: int = 0) -> LoadResult:  # fmt: skip
    """``n`` requests at Poisson arrivals of ``rate`` per second (the engine idles between them)."""
    driver = _Driver(engine, prompt_tokens, output_tokens, seed)
    gaps = random.Random(seed + 1)
    arrivals, t = [], 0.0
    for _ in range(n):
        t += gaps.expovariate(rate)
        arrivals.append(t)
    now, i = 0.0, 0
    while i < n or engine.has_unfinished_requests():
        while i < n and arrivals[i] <= now:
            driver.send(arrivals[i])
            i += 1
        if not engine.has_unfinished_requests():
            now = arrivals[i]
            continue
        end, _ = driver.step(now)
        # An idle engine (nothing schedulable yet) returns 0: jump to the next arrival instead of spinning.
        now = end if end > now else (arrivals[i] if i < n else now)
    return LoadResult(list(driver.traces.values()))
