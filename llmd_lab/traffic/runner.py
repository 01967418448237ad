"""Drive a :class:`~llmd_lab.traffic.workloads.Workload` at a target and collect a DataFrame.

Two load modes, as in GuideLLM's benchmarks:

* ``concurrency=N`` — N workers each take the next session and run its turns back to back (step-08:
  4 workers over 20 conversations);
* ``rate=R`` — sessions start as a Poisson process at R per second (seeded), each running its turns in
  order; a saturated target shows up as growing TTFT rather than as a slower sender.

``warmup`` sessions run first and are dropped from the results; ``max_requests`` and ``duration_s``
bound the run (whichever comes first stops new requests; in-flight ones finish). Progress shows as a
tqdm bar (a widget in Jupyter).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from llmd_lab._sync import run_sync
from llmd_lab.traffic.client import InferenceClient, RequestRecord
from llmd_lab.traffic.workloads import Session, Workload

DEFAULT_CONCURRENCY = 4  # workers when neither concurrency= nor rate= is given (step-08's benchmark)


@dataclass
class Target:
    """Where to send traffic: a base URL (``status.url`` or a Service URL), the model name, and TLS/auth.

    ``keepalive``: reuse connections (the default, as real clients do). A Kubernetes Service balances
    *connections*, so with keep-alive each worker's requests stick to the pod its connection landed on
    and a round-robin baseline over a Service looks more cache-friendly than per-request round-robin;
    ``keepalive=False`` opens a new connection per request, which the Service spreads request by request.
    """

    url: str
    model: str
    name: str | None = None
    token: str | None = None
    ca_file: str | None = None
    insecure: bool = False
    keepalive: bool = True

    def client(self, **kw: Any) -> InferenceClient:
        return InferenceClient(
            self.url, self.model, token=self.token, ca_file=self.ca_file, insecure=self.insecure,
            target=self.name or self.url, keepalive=self.keepalive, **kw,
        )  # fmt: skip


async def _run_session(
    client: InferenceClient, session: Session, out: list[RequestRecord], budget: _Budget, bar: Any
) -> None:
    history: list[dict] = [{"role": "system", "content": session.system}] if session.system else []
    for turn, text in enumerate(session.turns):
        if not budget.take():
            return
        history.append({"role": "user", "content": text})
        rec = await client.chat(history, max_tokens=session.max_tokens, tags={**session.tags, "turn": turn})
        out.append(rec)
        if bar is not None:
            bar.update(1)
        if not rec.ok:
            return  # a failed turn ends the conversation, like a user giving up
        history.append({"role": "assistant", "content": rec.text})


class _Budget:
    def __init__(self, max_requests: int | None, deadline: float | None):
        self.left = max_requests
        self.deadline = deadline

    def take(self) -> bool:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return False
        if self.left is not None:
            if self.left <= 0:
                return False
            self.left -= 1
        return True


async def arun(
    target: Target | InferenceClient,
    workload: Workload,
    *,
    concurrency: int | None = None,
    rate: float | None = None,
    warmup: int = 0,
    max_requests: int | None = None,
    duration_s: float | None = None,
    progress: bool = True,
    seed: int = 0,
    label: str | None = None,
) -> pd.DataFrame:
    """Async version of :func:`run` (use it from your own event loop)."""
    if concurrency is not None and rate is not None:
        raise ValueError("give one of concurrency=N (closed loop) or rate=R sessions/s (open loop), not both")
    if concurrency is None and rate is None:
        concurrency = DEFAULT_CONCURRENCY
    if concurrency is not None and concurrency < 1:
        raise ValueError(f"concurrency must be ≥ 1, got {concurrency}")
    if rate is not None and rate <= 0:
        raise ValueError(f"rate must be > 0 requests/s, got {rate}")
    own = isinstance(target, Target)
    client = target.client() if isinstance(target, Target) else target
    sessions = list(workload.sessions)
    warm, measured = sessions[:warmup], sessions[warmup:]
    try:
        if warm:
            sink: list[RequestRecord] = []
            await _closed_loop(client, warm, concurrency or 1, sink, _Budget(None, None), None)
        total = min(len(Workload("", measured)), max_requests or 10**12)
        bar = tqdm(total=total, desc=label or workload.name, disable=not progress, leave=True)
        records: list[RequestRecord] = []
        start = time.monotonic()
        budget = _Budget(max_requests, start + duration_s if duration_s else None)
        try:
            if concurrency is not None:
                await _closed_loop(client, measured, concurrency, records, budget, bar)
            else:
                await _open_loop(client, measured, float(rate or 1), seed, records, budget, bar)
        finally:
            bar.close()
    finally:
        if own:
            await client.aclose()
    df = pd.DataFrame([r.row() for r in records])
    if not df.empty:
        df["t_s"] = df["send_time"] - df["send_time"].min()
        df["workload"] = workload.name
        df["mode"] = label or client.target
    return df


async def _closed_loop(client, sessions, workers, out, budget, bar) -> None:
    queue: asyncio.Queue[Session] = asyncio.Queue()
    for s in sessions:
        queue.put_nowait(s)

    async def worker() -> None:
        while not queue.empty():
            await _run_session(client, queue.get_nowait(), out, budget, bar)

    await asyncio.gather(*(worker() for _ in range(min(workers, len(sessions)) or 1)))


async def _open_loop(client, sessions, rate, seed, out, budget, bar) -> None:
    rng = random.Random(seed)
    tasks = []
    t = time.monotonic()
    for s in sessions:
        if (budget.left is not None and budget.left <= 0) or (
            budget.deadline and time.monotonic() >= budget.deadline
        ):
            break
        t += rng.expovariate(rate)
        await asyncio.sleep(max(0.0, t - time.monotonic()))
        tasks.append(asyncio.create_task(_run_session(client, s, out, budget, bar)))
    await asyncio.gather(*tasks)


def run(
    target: Target | str, workload: Workload, *, model: str | None = None, keepalive: bool = True, **kwargs: Any
) -> pd.DataFrame:
    """Send ``workload`` to ``target`` and return one row per request.

    ``target`` is a :class:`Target`, or a URL with ``model=`` (and ``keepalive=``, see :class:`Target`). Keyword arguments as in :func:`arun`:
    ``concurrency``, ``rate``, ``warmup``, ``max_requests``, ``duration_s``, ``progress``, ``seed``,
    ``label``. Load is ``concurrency=N`` workers (4 when neither is given) or ``rate=R`` sessions
    started per second — giving ``rate`` alone is enough. Safe to call in a notebook cell (runs on the
    library's background loop).

    Columns: request_id, target, mode, workload, session, turn, send_time, t_s, status, ok, error,
    ttft_s, e2e_s, itl_s (list), itl_mean_s, prompt_tokens, cached_tokens, output_tokens, pod.
    """
    if isinstance(target, str):
        if not model:
            raise ValueError("pass model='<served model name>' with a URL target")
        target = Target(target, model, keepalive=keepalive)
    return run_sync(arun(target, workload, **kwargs))


def summary(df: pd.DataFrame, by: str = "mode") -> pd.DataFrame:
    """Per ``by`` group: requests, errors, TTFT p50/p95/p99/mean (ms), ITL mean (ms), prefix-cache hit
    rate (cached / prompt tokens, where the server reports it), output tokens/s and pods used."""
    if df.empty:
        return pd.DataFrame()
    rows = []
    for key, g in df.groupby(by, sort=False):
        ok = g[g["ok"]]
        ttft = ok["ttft_s"].dropna() * 1000
        span = (g["send_time"] + g["e2e_s"]).max() - g["send_time"].min()
        cached = ok["cached_tokens"].dropna()
        prompt = ok.loc[cached.index, "prompt_tokens"].dropna()
        rows.append(
            {
                by: key,
                "requests": len(g),
                "errors": int((~g["ok"]).sum()),
                "ttft_p50_ms": ttft.quantile(0.5) if len(ttft) else None,
                "ttft_p95_ms": ttft.quantile(0.95) if len(ttft) else None,
                "ttft_p99_ms": ttft.quantile(0.99) if len(ttft) else None,
                "ttft_mean_ms": ttft.mean() if len(ttft) else None,
                "itl_mean_ms": ok["itl_mean_s"].dropna().mean() * 1000
                if ok["itl_mean_s"].notna().any()
                else None,
                "cache_hit_rate": float(cached.sum() / prompt.sum())
                if len(prompt) and prompt.sum()
                else None,
                "output_tok_per_s": float(ok["output_tokens"].fillna(0).sum() / span) if span > 0 else None,
                "pods": int(g["pod"].nunique()),
            }
        )
    return pd.DataFrame(rows).set_index(by)


def requests_per_pod(df: pd.DataFrame, by: str = "mode") -> pd.DataFrame:
    """How many requests each pod served, per ``by`` group (a routing fingerprint)."""
    return df.groupby([by, "pod"], dropna=False).size().rename("requests").reset_index()


def compare(
    targets: Mapping[str, Target | str],
    workload: Workload,
    *,
    model: str | None = None,
    keepalive: bool = True,
    **kwargs: Any,
) -> pd.DataFrame:
    """Run the same workload against each target in turn (e.g. ``{"llm-d": status.url,
    "round-robin": workload Service URL}``) and return all rows with ``mode`` set to the key.

    URL targets get ``model`` and ``keepalive`` (see :class:`Target`: ``keepalive=False`` makes a
    Service's connection balancing act per request); :class:`Target` values keep their own.

    Targets run one after another, not interleaved, so they don't compete for the same pods. Prefix
    caches are not reset between runs (a cluster has no API for it): run the round-robin baseline
    first, or give each run its own ``seed`` so prompts differ.
    """
    frames = []
    for name, target in targets.items():
        t = target if isinstance(target, Target) else Target(target, model or "", keepalive=keepalive)
        if not t.model:
            raise ValueError(f"target {name!r} has no model: pass model='<served model name>'")
        frames.append(run(t, workload, label=name, **kwargs))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
