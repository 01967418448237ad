"""The class phase of ``llmd-lab bench lab --attendees N``: a whole class deploys notebook 02's service at once.

Each attendee ``userK`` works as themselves, the way the notebook does it: ``connect()`` with their own
kubeconfig (``$LLMD_LAB_HOME/kubeconfigs/userK.kubeconfig``, written by ``llmd-lab up --attendees N``), the
builder's LLMInferenceService with 02's parameters (Qwen3-0.6B, 2 replicas on g6.4xlarge, max model len
8192), ``deploy.apply`` and ``deploy.wait_ready`` in their own project. All attendees start together (the
worst case: "everybody run the cell now"), one thread each, while the instructor's :class:`ApiProbe` times
pod lists and watch delivery. Bounded: at most ``users.MAX_ATTENDEES`` attendees and ``--timeout`` seconds.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from llmd_lab import connect, deploy, manifests
from llmd_lab.bench.lab_load import ApiProbe, quantile
from llmd_lab.lab import users
from llmd_lab.lab.home import LabPaths

# notebook 02's parameters (notebooks/02-deploy-replicas.py)
NAME, MODEL, REPLICAS, GPU, MAX_MODEL_LEN = "qwen", "Qwen/Qwen3-0.6B", 2, "g6.4xlarge", 8192
VLLM_ARGS = ("--disable-uvicorn-access-log", "--enable-prompt-tokens-details")


def gpus_needed(attendees: int) -> int:
    return attendees * REPLICAS


def _attendee(home: Path, user: str, gate: threading.Barrier, timeout: float) -> dict[str, Any]:
    """One attendee's 02 deployment, timed from their apply; failures are returned, not raised."""
    row: dict[str, Any] = {"user": user}
    try:
        try:
            conn = connect(kubeconfig=users.kubeconfig_path(LabPaths(home), user), namespace=user, allow_lab=False)
            svc = manifests.llm_inference_service(NAME, f"hf://{MODEL}", replicas=REPLICAS, gpu=GPU,
                                                  max_model_len=MAX_MODEL_LEN, vllm_args=VLLM_ARGS,
                                                  labels={"llmd-lab/workshop": "true"})  # fmt: skip
        finally:
            gate.wait()  # everybody runs the cell at the same moment
        t0 = time.perf_counter()
        deploy.apply(conn, svc)
        row["apply_ms"] = 1000 * (time.perf_counter() - t0)
        deploy.wait_ready(conn, NAME, timeout_s=timeout, progress=False)
        row["apply_to_ready_s"] = time.perf_counter() - t0
    except Exception as exc:  # one attendee's failure is a finding, reported with the others
        row["error"] = f"{type(exc).__name__}: {exc}"[:300]
    return row


def run_class(home: Path, core: Any, attendees: int, timeout: float) -> dict[str, Any]:
    """Every attendee applies 02's service at the same moment; returns per-class figures."""
    names = users.attendee_names(attendees)  # raises for a count outside 1..MAX_ATTENDEES
    gate = threading.Barrier(attendees + 1)
    with ApiProbe(core, names[0], "class") as probe, ThreadPoolExecutor(max_workers=attendees) as pool:
        futures = [pool.submit(_attendee, home, user, gate, timeout) for user in names]
        gate.wait()  # every attendee is connected and has built the manifest
        t0 = time.perf_counter()
        rows = [f.result() for f in futures]
    all_ready = time.perf_counter() - t0
    ready = [r["apply_to_ready_s"] for r in rows if "apply_to_ready_s" in r]
    applies = [r["apply_ms"] for r in rows if "apply_ms" in r]
    out: dict[str, Any] = {
        "attendees": attendees, "ready": len(ready),
        "all_ready_s": all_ready if len(ready) == attendees else None,
        "apply_to_ready_p50_s": quantile(ready, 0.5), "apply_to_ready_max_s": max(ready) if ready else None,
        "apply_p50_ms": quantile(applies, 0.5), "apply_p99_ms": quantile(applies, 0.99),
        "errors": [f"{r['user']}: {r['error']}" for r in rows if "error" in r][:5],
    }
    out.update(probe.summary())
    return out


def print_class(result: dict[str, Any]) -> None:
    def fmt(v: Any, spec: str = ".1f") -> str:
        return "n/a" if v is None else format(v, spec)

    n = result["attendees"]
    print(f"\n{n} attendees each apply notebook 02's service ({REPLICAS} × {MODEL} on {GPU}) at once, as themselves:")
    print(f"  Ready: {result['ready']}/{n}; all Ready after {fmt(result['all_ready_s'])} s; per attendee "
          f"apply→Ready p50 {fmt(result['apply_to_ready_p50_s'])} s, max {fmt(result['apply_to_ready_max_s'])} s")
    print(f"  apply (create) p50/p99: {fmt(result['apply_p50_ms'])}/{fmt(result['apply_p99_ms'])} ms")
    print(f"  API meanwhile: list pods p50/p99 {fmt(result['api_list_p50_ms'])}/{fmt(result['api_list_p99_ms'])} ms "
          f"({result['api_lists']} lists), watch delivery p50/p99 {fmt(result['watch_p50_ms'])}/"
          f"{fmt(result['watch_p99_ms'])} ms ({result['watch_events']} events)")
    for line in result["errors"] + result["api_failures"]:
        print(f"  error: {line}")
