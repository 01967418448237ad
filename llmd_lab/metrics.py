"""Read vLLM and EPP metrics, per pod, and turn two readings into rates the workshop talks about.

Sources (all return a :class:`Snapshot`, so the rest does not care where numbers came from):

* :class:`DirectSource` — ``GET <url>/metrics`` for each named pod URL (httpx);
* :class:`PodProxySource` — the API server's pod proxy (``/api/v1/namespaces/<ns>/pods/<pod>:<port>/proxy/metrics``)
  for every pod matching a label selector; works from a laptop with only API access;
* :class:`PromQLSource` — OpenShift monitoring's Thanos querier with the user's token. RHOAI's
  PodMonitor renames every metric to ``kserve_<name>``; the prefix is stripped so names match the
  other sources, and ``pod`` comes from the series' ``pod`` label.

Text is parsed with ``prometheus_client.parser``. :func:`deltas` compares two snapshots: requests,
tokens, prefix-cache hit rate (Δhits/Δqueries, in tokens), KV-cache use and queue now, TTFT
percentiles from the Δ of the ``vllm:time_to_first_token_seconds`` histogram (interpolated within a
bucket, as PromQL's ``histogram_quantile`` does). :class:`Poller` takes snapshots on a timer for the
live panel.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import pandas as pd
from prometheus_client.parser import text_string_to_metric_families

from llmd_lab._sync import portal_loop, run_sync

Labels = tuple[tuple[str, str], ...]

# vLLM names (reference §4.1); both KV names because vLLM ≥ 0.11 hides the old one.
KV_USAGE = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")
HITS = ("vllm:prefix_cache_hits_total", "vllm:gpu_prefix_cache_hits_total")
QUERIES = ("vllm:prefix_cache_queries_total", "vllm:gpu_prefix_cache_queries_total")
RUNNING = "vllm:num_requests_running"
WAITING = "vllm:num_requests_waiting"
SUCCESS = "vllm:request_success_total"
PROMPT_TOKENS = "vllm:prompt_tokens_total"
GENERATION_TOKENS = "vllm:generation_tokens_total"
PREEMPTIONS = "vllm:num_preemptions_total"
TTFT = "vllm:time_to_first_token_seconds"
KSERVE_PREFIX = "kserve_"


def parse(text: str) -> dict[tuple[str, Labels], float]:
    """Prometheus text → ``{(sample name, sorted label pairs): value}`` (``_created`` samples dropped)."""
    out: dict[tuple[str, Labels], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.endswith("_created"):
                continue
            name = s.name[len(KSERVE_PREFIX) :] if s.name.startswith(KSERVE_PREFIX) else s.name
            out[(name, tuple(sorted(s.labels.items())))] = float(s.value)
    return out


@dataclass
class Snapshot:
    """Samples per pod at one time; ``errors`` says which pods could not be read and why."""

    time: float
    pods: dict[str, dict[tuple[str, Labels], float]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def value(self, pod: str, names: str | Iterable[str], **labels: str) -> float | None:
        """Sum of the samples named ``names`` (first name present wins) whose labels include ``labels``."""
        samples = self.pods.get(pod, {})
        for name in (names,) if isinstance(names, str) else names:
            hits = [v for (n, ls), v in samples.items() if n == name and _has(ls, labels)]
            if hits:
                return float(sum(hits))
        return None

    def buckets(self, pod: str, histogram: str) -> list[tuple[float, float]]:
        """Cumulative ``(le, count)`` pairs of a histogram, summed over its other labels, sorted by ``le``."""
        acc: dict[float, float] = {}
        for (n, ls), v in self.pods.get(pod, {}).items():
            if n == histogram + "_bucket":
                le = float(dict(ls)["le"])
                acc[le] = acc.get(le, 0.0) + v
        return sorted(acc.items())

    def frame(self) -> pd.DataFrame:
        """Long format: one row per (pod, metric, labels) with the value."""
        rows = [
            {"time": self.time, "pod": pod, "metric": n, "labels": dict(ls), "value": v}
            for pod, samples in self.pods.items()
            for (n, ls), v in samples.items()
        ]
        return pd.DataFrame(rows, columns=["time", "pod", "metric", "labels", "value"])


def _has(labels: Labels, want: Mapping[str, str]) -> bool:
    d = dict(labels)
    return all(d.get(k) == v for k, v in want.items())


class MetricsSource(Protocol):
    """Anything that can take a :class:`Snapshot`."""

    async def snapshot(self) -> Snapshot: ...


# ----------------------------------------------------------------------------------------------- sources
class DirectSource:
    """Scrape ``<url>/metrics`` for each pod (``{"pod-a": "http://10.0.0.5:8000"}``)."""

    def __init__(
        self, urls: Mapping[str, str], *, verify: Any = True, token: str | None = None, timeout: float = 5.0
    ):
        self.urls = dict(urls)
        self._verify = verify
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._timeout = timeout

    async def snapshot(self) -> Snapshot:
        snap = Snapshot(time.time())
        async with httpx.AsyncClient(
            verify=self._verify, headers=self._headers, timeout=self._timeout
        ) as http:

            async def one(pod: str, url: str) -> None:
                try:
                    resp = await http.get(url.rstrip("/") + "/metrics")
                    resp.raise_for_status()
                    snap.pods[pod] = parse(resp.text)
                except (httpx.HTTPError, ValueError) as exc:
                    snap.errors[pod] = f"{type(exc).__name__}: {exc}"

            await asyncio.gather(*(one(p, u) for p, u in self.urls.items()))
        return snap


class PodProxySource:
    """Scrape pods through the API server's pod proxy (needs ``get`` on ``pods/proxy``).

    ``core`` is a ``kubernetes.client.CoreV1Api``. Pods are listed by ``label_selector`` each time,
    so replicas that come and go are followed; only Running pods are scraped. ``scheme`` is
    ``"https"`` for RHOAI's vLLM (KServe serves TLS on 8000; the API server's proxy does not verify the
    pod's certificate) or ``"http"``; ``None`` reads it from the pod, see :func:`_port_scheme`.
    """

    def __init__(
        self, core: Any, namespace: str, label_selector: str, *, port: int = 8000, scheme: str | None = None
    ):
        self.core = core
        self.namespace = namespace
        self.label_selector = label_selector
        self.port = port
        self.scheme = scheme

    def _scrape(self) -> Snapshot:
        snap = Snapshot(time.time())
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=self.label_selector).items
        for pod in pods:
            name = pod.metadata.name
            if (pod.status.phase or "") != "Running":
                continue
            scheme = self.scheme or _port_scheme(pod, self.port)
            target = f"{scheme}:{name}:{self.port}" if scheme == "https" else f"{name}:{self.port}"
            try:
                text = self.core.connect_get_namespaced_pod_proxy_with_path(
                    target, self.namespace, "metrics", _preload_content=False
                ).data.decode()
                snap.pods[name] = parse(text)
            except Exception as exc:  # ApiException, urllib3 errors, parse errors: report per pod
                snap.errors[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        return snap

    async def snapshot(self) -> Snapshot:
        return await asyncio.to_thread(self._scrape)


def _port_scheme(pod: Any, port: int) -> str:
    """``https`` when the container serving ``port`` says it speaks TLS there: a port named ``https…``, an
    ``httpGet`` probe with ``scheme: HTTPS`` on it (KServe's vLLM preset), or vLLM's ``--ssl-certfile``;
    else ``http``. Plain HTTP to KServe's vLLM fails (the pod closes the connection), so this matters."""
    for c in [*(pod.spec.init_containers or []), *(pod.spec.containers or [])]:
        ports = [p for p in c.ports or [] if p.container_port == port]
        if not ports:
            continue
        if any((p.name or "").startswith("https") for p in ports):
            return "https"
        probes = [pr.http_get for pr in (c.readiness_probe, c.liveness_probe, c.startup_probe)
                  if pr is not None and pr.http_get is not None]
        if any((g.scheme or "").upper() == "HTTPS" and str(g.port) in (str(port), ports[0].name) for g in probes):
            return "https"
        if any("--ssl-certfile" in str(a) for a in [*(c.command or []), *(c.args or [])]):
            return "https"
    return "http"


class PromQLSource:
    """Instant queries against a Prometheus/Thanos API (OpenShift: the Thanos querier, user token).

    ``selector`` picks the series, e.g. ``{namespace="demo", llm_isvc_name="qwen"}``; the
    ``kserve_``-prefixed vLLM metrics are fetched with one regex query and keyed by the ``pod`` label.
    For users without cluster-monitoring-view, use the tenancy port (9092) and pass ``namespace``.
    """

    DEFAULT_URL = "https://thanos-querier.openshift-monitoring.svc.cluster.local:9091"

    def __init__(
        self,
        token: str,
        selector: Mapping[str, str],
        *,
        url: str = DEFAULT_URL,
        namespace: str | None = None,
        verify: Any = True,
        prefix: str = KSERVE_PREFIX,
        timeout: float = 10.0,
    ):
        self.url = url.rstrip("/")
        self.selector = dict(selector)
        self.namespace = namespace
        self.prefix = prefix
        self._client_kw = {
            "verify": verify,
            "headers": {"Authorization": f"Bearer {token}"},
            "timeout": timeout,
        }

    def query_text(self) -> str:
        terms = [f'__name__=~"{self.prefix}vllm:.*"'] + [f'{k}="{v}"' for k, v in self.selector.items()]
        return "{" + ",".join(terms) + "}"

    async def snapshot(self) -> Snapshot:
        params = {"query": self.query_text()}
        if self.namespace:
            params["namespace"] = self.namespace
        async with httpx.AsyncClient(**self._client_kw) as http:
            resp = await http.get(f"{self.url}/api/v1/query", params=params)
        if resp.status_code in (401, 403):
            raise PermissionError(
                f"Thanos querier answered {resp.status_code}: your token cannot read metrics; ask for the "
                "cluster-monitoring-view role, or use the tenancy port 9092 with namespace=<your project>"
            )
        resp.raise_for_status()
        body = resp.json()
        snap = Snapshot(time.time())
        for series in body.get("data", {}).get("result", []):
            metric = dict(series["metric"])
            name = metric.pop("__name__")
            name = name[len(self.prefix) :] if name.startswith(self.prefix) else name
            pod = metric.get("pod", "?")
            labels = tuple(sorted((k, v) for k, v in metric.items() if k not in ("pod", "instance", "job")))
            snap.pods.setdefault(pod, {})[(name, labels)] = float(series["value"][1])
        return snap


# ----------------------------------------------------------------------------------------------- analysis
def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """PromQL-style quantile from cumulative ``(le, count)`` buckets (linear within a bucket)."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    prev_le, prev_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if math.isinf(le):
                return prev_le
            if count == prev_count:
                return le
            return prev_le + (le - prev_le) * (rank - prev_count) / (count - prev_count)
        prev_le, prev_count = le, count
    return prev_le


def _delta_buckets(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> list[tuple[float, float]]:
    before = dict(a)
    return [(le, c - before.get(le, 0.0)) for le, c in b]


def deltas(before: Snapshot, after: Snapshot) -> pd.DataFrame:
    """Per pod between two snapshots: counts and rates, hit rate, KV use/queue now, TTFT percentiles.

    A pod missing from ``before`` counts from zero (it started in between); a counter that went down
    (the pod restarted) is treated as starting from zero too, as Prometheus's ``rate`` does.
    """
    dt = max(after.time - before.time, 1e-9)
    rows = []
    for pod in sorted(after.pods):

        def d(names: str | Iterable[str], pod: str = pod) -> float | None:
            b, a = before.value(pod, names), after.value(pod, names)
            if a is None:
                return None
            return a - b if b is not None and a >= b else a

        hits, queries = d(HITS), d(QUERIES)
        ttft = _delta_buckets(before.buckets(pod, TTFT), after.buckets(pod, TTFT))
        if ttft and ttft[-1][1] < 0:
            ttft = after.buckets(pod, TTFT)
        requests = d(SUCCESS)
        rows.append(
            {
                "pod": pod,
                "requests": requests,
                "requests_per_s": requests / dt if requests is not None else None,
                "prompt_tokens": d(PROMPT_TOKENS),
                "generation_tokens": d(GENERATION_TOKENS),
                "prefix_cache_queries": queries,
                "prefix_cache_hits": hits,
                "hit_rate": (hits / queries) if hits is not None and queries else None,
                "kv_cache_usage": after.value(pod, KV_USAGE),
                "running": after.value(pod, RUNNING),
                "waiting": after.value(pod, WAITING),
                "preemptions": d(PREEMPTIONS),
                "ttft_p50_s": histogram_quantile(0.5, ttft),
                "ttft_p95_s": histogram_quantile(0.95, ttft),
                "ttft_p99_s": histogram_quantile(0.99, ttft),
                "interval_s": dt,
            }
        )
    return pd.DataFrame(rows)


def pool_buckets(before: Snapshot, after: Snapshot, histogram: str = TTFT) -> list[tuple[float, float]]:
    """Cumulative ``(le, count)`` of one histogram over the whole pool between two snapshots.

    Each pod's Δ is taken first (a pod that appeared in between counts from zero; one whose counts went
    down restarted and counts from zero too), then the Δs are summed per bucket bound — what
    ``sum by (le) (increase(<histogram>_bucket[…]))`` gives in PromQL.
    """
    acc: dict[float, float] = {}
    for pod in after.pods:
        delta = _delta_buckets(before.buckets(pod, histogram), after.buckets(pod, histogram))
        if delta and min(c for _, c in delta) < 0:
            delta = after.buckets(pod, histogram)
        for le, count in delta:
            acc[le] = acc.get(le, 0.0) + count
    return sorted(acc.items())


def pool_quantiles(
    before: Snapshot,
    after: Snapshot,
    histogram: str = TTFT,
    q: float | Iterable[float] = (0.5, 0.95, 0.99),
) -> dict[float, float | None]:
    """Engine-side quantiles over all pods between two snapshots: ``{0.5: s, 0.95: s, 0.99: s}``.

    Sums the per-pod Δ buckets (:func:`pool_buckets`), then interpolates as ``histogram_quantile`` does.
    This is the latency vLLM itself measured (queueing + prefill for TTFT), without the client's and
    the gateway's network and processing time — which matters where those are large next to the
    model's own time (the local lab at a high ``--time-scale``). None where no request was observed.
    """
    qs = (q,) if isinstance(q, int | float) else tuple(q)
    bad = [x for x in qs if not 0 <= x <= 1]
    if bad:
        raise ValueError(f"quantiles must be between 0 and 1, got {bad}")
    buckets = pool_buckets(before, after, histogram)
    return {float(x): histogram_quantile(x, buckets) for x in qs}


def epp_summary(snap: Snapshot) -> pd.DataFrame:
    """The EPP's own view from its ``/metrics``: per-pod queue, pool averages, scheduler requests."""
    rows = []
    for pod, samples in snap.pods.items():
        for (name, labels), value in samples.items():
            if name.startswith(
                ("inference_pool_", "inference_model_request_total", "inference_objective_request_total")
            ):
                rows.append({"epp_pod": pod, "metric": name, **dict(labels), "value": value})
    return pd.DataFrame(rows)


def scrape(source: MetricsSource) -> Snapshot:
    """Take one snapshot synchronously (safe in a notebook cell)."""
    return run_sync(source.snapshot())


def requests_per_pod(before: Snapshot, after: Snapshot) -> pd.DataFrame:
    """Which pod served how many requests between two snapshots: the Δ of each pod's
    ``vllm:request_success_total``. This is how to tell which pods answered on a cluster too: vLLM names no
    pod in its responses, and the EPP logs its pick ("Request handled") only at ``-v=3``, above the
    verbosity KServe runs it at (GIE v1.0.0 ``requestcontrol/director.go``)."""
    frame = deltas(before, after)
    if frame.empty:
        return pd.DataFrame(columns=["pod", "requests"])
    return frame[["pod", "requests"]].fillna({"requests": 0}).astype({"requests": int})


class Window:
    """Per-pod deltas around a block of traffic::

        with metrics.Window(source) as w:
            df = traffic.run(...)
        w.per_pod            # metrics.deltas(before, after): requests, hit rate, TTFT… per pod
        w.requests_per_pod() # pod, requests

    Only traffic in the window counts, so keep other clients off the service while it is open."""

    def __init__(self, source: MetricsSource) -> None:
        self.source = source
        self.before: Snapshot | None = None
        self.after: Snapshot | None = None

    def __enter__(self) -> Window:
        self.before = scrape(self.source)
        return self

    def __exit__(self, *exc: object) -> None:
        self.after = scrape(self.source)

    @property
    def per_pod(self) -> pd.DataFrame:
        if self.before is None or self.after is None:
            raise RuntimeError("the window is still open (use it in a `with` block and read it afterwards)")
        return deltas(self.before, self.after)

    def requests_per_pod(self) -> pd.DataFrame:
        if self.before is None or self.after is None:
            raise RuntimeError("the window is still open (use it in a `with` block and read it afterwards)")
        return requests_per_pod(self.before, self.after)


class Poller:
    """Snapshot ``source`` every ``interval_s`` in the background; keep a timeline of per-pod deltas.

    ``on_update(delta_frame, snapshot)`` runs after each reading (the viz live panel uses it). Call
    :meth:`stop` (or use ``with Poller(...)``) to end it. Works inside Jupyter: the loop runs on the
    library's background thread.
    """

    def __init__(
        self,
        source: MetricsSource,
        interval_s: float = 2.0,
        on_update: Callable[[pd.DataFrame, Snapshot], None] | None = None,
        max_points: int = 1000,
    ):
        if interval_s <= 0:
            raise ValueError("interval_s must be > 0")
        self.source = source
        self.interval_s = interval_s
        self.on_update = on_update
        self.max_points = max_points
        self.snapshots: list[Snapshot] = []
        self.timeline: list[pd.DataFrame] = []
        self.errors: list[str] = []
        self._task: asyncio.Future | None = None

    async def _loop(self) -> None:
        while True:
            try:
                snap = await self.source.snapshot()
                if self.snapshots:
                    frame = deltas(self.snapshots[-1], snap)
                    frame.insert(0, "time", pd.Timestamp(snap.time, unit="s"))
                    self.timeline.append(frame)
                    self.timeline = self.timeline[-self.max_points :]
                    if self.on_update is not None:
                        self.on_update(frame, snap)
                self.snapshots = [*self.snapshots[-1:], snap]
            except Exception as exc:  # keep polling; show the error in the panel
                self.errors.append(f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(self.interval_s)

    def start(self) -> Poller:
        if self._task is None or self._task.done():
            self._task = asyncio.run_coroutine_threadsafe(self._loop(), portal_loop())
        return self

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def frame(self) -> pd.DataFrame:
        """All per-interval deltas so far (one row per pod per interval)."""
        return pd.concat(self.timeline, ignore_index=True) if self.timeline else pd.DataFrame()

    def __enter__(self) -> Poller:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
