"""The class-sized load phase of ``llmd-lab bench lab``: many conversations through the gateway at once.

While ``conversations`` concurrent multi-turn conversations run through the service's ``status.url`` (the
gateway → EPP → simulated vLLM path attendees use), two probe threads measure what an instructor would feel:
the API server (list the namespace's pods; a ConfigMap create → watch event delivery) and, afterwards, the
EPP's own decision latency (``inference_extension_scheduler_e2e_duration_seconds`` from its /metrics, as the
lab's EPP records real wall time per decision). Everything is bounded: ``--load-seconds`` caps the run.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from llmd_lab.traffic import InferenceClient, arun, multi_turn

EPP_COMPONENT = "app.kubernetes.io/component=llminferenceservice-router-scheduler"
SCHEDULER_E2E = "inference_extension_scheduler_e2e_duration_seconds"


def quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class ApiProbe:
    """Times pod lists and ConfigMap watch delivery in background threads until stopped."""

    def __init__(self, core: Any, namespace: str, tag: str) -> None:
        self.core, self.ns, self.tag = core, namespace, tag
        self.failures: list[str] = []
        self.lists: list[float] = []
        self.watch: list[float] = []
        self._stop = threading.Event()
        self._sent: dict[str, float] = {}
        self._threads = [threading.Thread(target=f, daemon=True) for f in (self._list_loop, self._watch_loop,
                                                                           self._create_loop)]  # fmt: skip

    def __enter__(self) -> ApiProbe:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)

    def _list_loop(self) -> None:
        # list first, then wait: a load phase shorter than the interval still gets one measured list
        while True:
            start = time.perf_counter()
            try:
                self.core.list_namespaced_pod(self.ns)
                self.lists.append(time.perf_counter() - start)
            except Exception as exc:  # reported in summary(); the probe keeps going
                self.failures.append(f"list pods: {exc}"[:200])
            if self._stop.wait(0.2):
                return

    def _watch_loop(self) -> None:
        from kubernetes import watch

        w = watch.Watch()
        while not self._stop.is_set():
            for event in w.stream(self.core.list_namespaced_config_map, self.ns, label_selector="bench=lab-load",
                                  timeout_seconds=5):  # fmt: skip
                name = event["object"].metadata.name
                if event["type"] == "ADDED" and name in self._sent:
                    self.watch.append(time.perf_counter() - self._sent.pop(name))
                if self._stop.is_set():
                    w.stop()
                    break

    def _create_loop(self) -> None:
        i = 0
        while not self._stop.wait(0.5):
            name = f"lab-load-{self.tag}-{i}"
            self._sent[name] = time.perf_counter()
            try:
                self.core.create_namespaced_config_map(self.ns, {"metadata": {"name": name,
                                                                              "labels": {"bench": "lab-load"}}})  # fmt: skip
            except Exception as exc:  # an API error under load is a finding: reported in summary()
                self._sent.pop(name, None)
                self.failures.append(f"create {name}: {exc}"[:200])
            i += 1

    def summary(self) -> dict[str, Any]:
        ms = [1000 * x for x in self.lists]
        wm = [1000 * x for x in self.watch]
        return {"api_lists": len(ms), "api_list_p50_ms": quantile(ms, 0.5), "api_list_p99_ms": quantile(ms, 0.99),
                "watch_events": len(wm), "watch_p50_ms": quantile(wm, 0.5), "watch_p99_ms": quantile(wm, 0.99),
                "api_failures": self.failures[:3]}  # fmt: skip


def epp_decision_latency(core: Any, namespace: str, service: str) -> dict[str, Any]:
    """Mean and bucket-p99 of the EPP's scheduling decisions, from its /metrics on the pod IP (port 9090).

    The EPP of ``service``, not of another (or a deleted, still terminating) LLMInferenceService in the
    namespace, which has seen none of the load."""
    selector = f"{EPP_COMPONENT},app.kubernetes.io/name={service}"
    pods = [p for p in core.list_namespaced_pod(namespace, label_selector=selector).items
            if p.status.pod_ip and p.metadata.deletion_timestamp is None]  # fmt: skip
    if not pods:
        return {"epp_error": f"no running EPP pod with an IP for {service}"}
    # a restart under load (liveness probe timing out) resets the EPP's metrics: say so next to them
    restarts = sum(cs.restart_count for cs in pods[0].status.container_statuses or [])
    try:
        text = httpx.get(f"http://{pods[0].status.pod_ip}:9090/metrics", timeout=10).text
    except httpx.HTTPError as exc:
        return {"epp_error": f"scrape failed: {exc}"}
    buckets: list[tuple[float, float]] = []
    total = count = 0.0
    for fam in text_string_to_metric_families(text):
        if fam.name != SCHEDULER_E2E:
            continue
        for s in fam.samples:
            if s.name.endswith("_bucket"):
                buckets.append((float(s.labels["le"]), s.value))
            elif s.name.endswith("_sum"):
                total = s.value
            elif s.name.endswith("_count"):
                count = s.value
    if not count:
        return {"epp_error": f"{SCHEDULER_E2E} has no observations (EPP container restarts: {restarts})",
                "epp_restarts": restarts}
    p99 = next((le for le, c in sorted(buckets) if c >= 0.99 * count), None)
    return {"epp_decisions": int(count), "epp_mean_ms": 1000 * total / count, "epp_restarts": restarts,
            "epp_p99_bucket_ms": None if p99 is None else 1000 * p99}  # fmt: skip


def run_conversations(url: str, model: str, conversations: int, turns: int, seconds: float,
                      ca_file: str | None) -> dict[str, Any]:  # fmt: skip
    """``conversations`` concurrent conversations through ``url``; returns request counts and latencies.

    Client TTFT is measured from the send: under overload it is mostly time queued in the lab process.
    """
    wl = multi_turn(conversations, turns, system_tokens=200, turn_tokens=30, max_tokens=16)
    # One connection per conversation: a pooled client (256 by default) would queue them on this side.
    client = InferenceClient(url, model, ca_file=ca_file, max_connections=conversations, target="gateway")

    async def go() -> Any:
        try:
            return await arun(client, wl, concurrency=conversations, duration_s=seconds, progress=False)
        finally:
            await client.aclose()

    start = time.perf_counter()
    df = asyncio.run(go())
    wall = time.perf_counter() - start
    ok = df[df["ok"]] if not df.empty else df
    ttft = [1000 * x for x in ok["ttft_s"].dropna()] if not ok.empty else []
    return {"conversations": conversations, "turns": turns, "requests": len(df), "ok": len(ok),
            "wall_s": wall, "requests_per_s": len(df) / wall if wall else 0.0,
            "errors": sorted({str(e) for e in df["error"].dropna()})[:3] if not df.empty else [],
            "client_ttft_p50_ms": statistics.median(ttft) if ttft else None,
            "client_ttft_p99_ms": quantile(ttft, 0.99)}  # fmt: skip
