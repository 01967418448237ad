"""Model-server metrics as the EPP sees them: scraped over HTTP, parsed, picked by configured name.

``parse_exposition`` turns Prometheus text into ``{sample name: [(labels, value)…]}``; ``MetricNames``
holds the flag-configured names (``--kv-cache-usage-percentage-metric`` …) and ``apply_samples``
updates an :class:`EndpointMetrics` from them. A family the EPP cannot find leaves the old value in
place — with a wrong kv metric name the kv scorer keeps seeing 0 % usage, exactly as on a cluster.
The discrete-event simulator feeds the same ``{name: samples}`` structure without the HTTP hop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

from llmd_lab._tasks import cancel_and_wait
from llmd_lab.sim.epp.types import Endpoint, EndpointMetrics
from llmd_lab.sim.keepalive import POD_CLIENT_KEEPALIVE_EXPIRY_S

Samples = dict[str, list[tuple[dict[str, str], float]]]

_SPEC_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?$")


@dataclass(frozen=True)
class MetricSpec:
    """A metric name with optional label matchers, as the flags accept: ``name{label=value}``."""

    name: str
    labels: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> MetricSpec:
        match = _SPEC_RE.match(text.strip())
        if not match:
            raise ValueError(f"invalid metric spec {text!r} (expected name or name{{label=value,…}})")
        labels = []
        for term in filter(None, (t.strip() for t in (match.group(2) or "").split(","))):
            key, sep, value = term.partition("=")
            if not sep:
                raise ValueError(f"invalid label matcher {term!r} in metric spec {text!r}")
            labels.append((key.strip(), value.strip().strip('"')))
        return cls(match.group(1), tuple(labels))

    def find(self, samples: Samples) -> float | None:
        for labels, value in samples.get(self.name, ()):
            if all(labels.get(k) == v for k, v in self.labels):
                return value
        return None


@dataclass(frozen=True)
class MetricNames:
    """The metric names the EPP reads (GIE v1.0.0 flag defaults)."""

    total_queued_requests: str = "vllm:num_requests_waiting"
    kv_cache_usage_percentage: str = "vllm:gpu_cache_usage_perc"
    lora_info: str = "vllm:lora_requests_info"
    total_running_requests: str = "vllm:num_requests_running"

    def specs(self) -> dict[str, MetricSpec]:
        return {
            "queued": MetricSpec.parse(self.total_queued_requests),
            "kv": MetricSpec.parse(self.kv_cache_usage_percentage),
            "running": MetricSpec.parse(self.total_running_requests),
            "lora": MetricSpec.parse(self.lora_info),
        }


def parse_exposition(text: str, only: set[str] | None = None) -> Samples:
    """Parse Prometheus text exposition with ``prometheus_client``'s parser.

    ``only`` keeps just those families (the parser is pure Python and vLLM's page is mostly histograms
    the EPP never reads; at a 50 ms refresh that matters on a laptop).
    """
    if only is not None:
        kept = []
        for line in text.splitlines():
            if line.startswith("#"):
                parts = line.split(" ", 3)
                if len(parts) >= 3 and parts[2] in only:
                    kept.append(line)
            elif line.split("{", 1)[0].split(" ", 1)[0] in only:
                kept.append(line)
        text = "\n".join(kept) + "\n"
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return out


def apply_samples(metrics: EndpointMetrics, samples: Samples, specs: Mapping[str, MetricSpec], now: float) -> list[str]:
    """Update ``metrics`` in place; return the names that were missing (their old values are kept)."""
    missing = []
    queued = specs["queued"].find(samples)
    if queued is None:
        missing.append(specs["queued"].name)
    else:
        metrics.waiting_queue_size = int(queued)
    kv = specs["kv"].find(samples)
    if kv is None:
        missing.append(specs["kv"].name)
    else:
        metrics.kv_cache_usage_percent = kv
    running = specs["running"].find(samples)
    if running is not None:
        metrics.running_queue_size = int(running)
    metrics.update_time = now
    return missing


class Scraper:
    """Scrapes each endpoint's ``/metrics`` every ``interval`` seconds (``--refresh-metrics-interval``)."""

    def __init__(
        self,
        endpoints: Callable[[], list[Endpoint]],
        names: MetricNames,
        *,
        interval: float = 0.05,
        port: int = 0,
        path: str = "/metrics",
        scheme: str = "http",
        insecure_skip_verify: bool = False,
        clock: Callable[[], float],
        log: logging.Logger | None = None,
        timeout: float = 1.0,
    ) -> None:
        self.endpoints = endpoints
        self.specs = names.specs()
        self.wanted = {spec.name for spec in self.specs.values()}
        self.interval = interval
        self.port = port
        self.path = path
        self.scheme = scheme
        self.insecure_skip_verify = insecure_skip_verify
        self.clock = clock
        self.log = log or logging.getLogger("llmd_lab.sim.epp.scraper")
        self.timeout = timeout
        self._task: asyncio.Task | None = None
        self._client: httpx.AsyncClient | None = None
        self._stopping = asyncio.Event()
        self._missing_reported: set[tuple[str, str]] = set()
        self.scrapes = 0

    def url(self, ep: Endpoint) -> str:
        return f"{self.scheme}://{ep.address}:{self.port or ep.port}{self.path}"

    async def scrape_once(self, client: httpx.AsyncClient) -> None:
        await asyncio.gather(*(self._scrape(client, ep) for ep in self.endpoints()))
        self.scrapes += 1

    async def _scrape(self, client: httpx.AsyncClient, ep: Endpoint) -> None:
        try:
            response = await client.get(self.url(ep), timeout=self.timeout)
            response.raise_for_status()
            samples = parse_exposition(response.text, self.wanted)
        except (httpx.HTTPError, ValueError) as exc:
            self.log.debug("failed to scrape %s: %s (keeping old metrics)", ep.name, exc)
            return
        for name in apply_samples(ep.metrics, samples, self.specs, self.clock()):
            if (ep.name, name) not in self._missing_reported:
                self._missing_reported.add((ep.name, name))
                self.log.error("metric family %s not found on pod %s; keeping the previous value", name, ep.name)

    async def run(self, client: httpx.AsyncClient) -> None:
        while not self._stopping.is_set():
            await self.scrape_once(client)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval)

    def start(self) -> None:
        # https: the pods' certificate is KServe's self-signed one, so it verifies only when told to skip
        # (--model-server-metrics-https-insecure-skip-verify, which KServe passes)
        self._client = httpx.AsyncClient(verify=not self.insecure_skip_verify,
                                         limits=httpx.Limits(keepalive_expiry=POD_CLIENT_KEEPALIVE_EXPIRY_S))
        self._stopping.clear()
        self._task = asyncio.create_task(self.run(self._client), name="epp-scraper")

    async def stop(self) -> None:
        """Finish the scrape under way (bounded by the scrape timeout) rather than cancel it mid-handshake,
        which would leave its TLS connection open."""
        self._stopping.set()
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._task), self.timeout + 1)
            await cancel_and_wait([self._task])
            self._task = None
        if self._client is not None:  # closed here, not while cancelled, so its TLS connections close cleanly
            await self._client.aclose()
            self._client = None
