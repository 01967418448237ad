"""Traffic for OpenAI-compatible endpoints: timed streaming client, workloads, runner, comparison.

Typical notebook use::

    from llmd_lab import traffic
    wl = traffic.multi_turn(20, 6)                       # step-08's benchmark shape
    df = traffic.compare({"llm-d": gateway_url, "round-robin": service_url}, wl, model="qwen",
                         concurrency=4)
    traffic.summary(df)                                  # TTFT p50/p95/p99, cache hit rate, pods used
"""

from llmd_lab.traffic import sweep
from llmd_lab.traffic.client import InferenceClient, RequestRecord, tls_verify
from llmd_lab.traffic.runner import Target, arun, compare, requests_per_pod, run, summary
from llmd_lab.traffic.workloads import (
    WORKLOADS,
    Session,
    Workload,
    multi_turn,
    rag,
    random_prompts,
    reference_multi_turn,
    repeated_prompt,
    shared_system_prompt,
)

__all__ = [
    "WORKLOADS",
    "InferenceClient",
    "RequestRecord",
    "Session",
    "Target",
    "Workload",
    "arun",
    "compare",
    "multi_turn",
    "rag",
    "random_prompts",
    "reference_multi_turn",
    "repeated_prompt",
    "requests_per_pod",
    "run",
    "shared_system_prompt",
    "summary",
    "sweep",
    "tls_verify",
]
