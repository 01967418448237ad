"""Agreement check: one workload, one service, three clients — the kit's runner, GuideLLM, inference-perf.

Why: learners compare the kit's numbers with the tools they use at work; the three must agree, or the
difference must be explained. Every client sends the same shape of load one after the other: unique
prompts, fixed output length, one request in flight. Prompt lengths are matched on the server's count: the
kit's random prompts and GuideLLM's synthetic ones are both ``prompt_tokens`` + 8 (ChatML) on the pod, and
inference-perf (completions API, no template) is given that sum. ITL is (latency − TTFT) / (output tokens − 1)
per request for all three (the kit's chunk-gap median is shown as well).

What else each row says, because a client can slow the server it measures: ``client_cpu_s`` is the CPU the
client used (this process for the kit, the child processes for the tools), and with ``--namespace``/``--name``
the pods' own TTFT and ITL means during that client's run (``vllm:time_to_first_token_seconds``,
``vllm:inter_token_latency_seconds``). In the lab the server shares the machine's cores with the client:
GuideLLM's worker and messaging threads poll (≈10× the kit's CPU), which delays the lab's engine. To compare
the clients and not the CPU contention, pin the lab to its own cores (``taskset -a -p -c 0 <lab pid>``) and
the clients to others (``--client-cpus 1``). On a cluster the client runs in its own pod. Usage::

    python -m llmd_lab.benchtools.agreement --url "$(oc get llmisvc qwen -o jsonpath='{.status.url}')" \\
        --model Qwen/Qwen3-0.6B [--namespace NS --name qwen] [--client-cpus 1] [--requests 20]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from llmd_lab import metrics, traffic
from llmd_lab.benchtools import guidellm, inference_perf
from llmd_lab.traffic import workloads

CHATML_TOKENS = 8  # "<|im_start|>user\n" + "<|im_end|>\n<|im_start|>assistant\n" around one user message


def kit_row(url: str, model: str, requests: int, prompt_tokens: int, output_tokens: int) -> dict:
    wl = workloads.random_prompts(requests, prompt_tokens=prompt_tokens, max_tokens=output_tokens, seed=7)
    df = traffic.run(url, wl, model=model, concurrency=1, progress=False, label="kit")
    ok = df[df["ok"]]
    per_token = (ok["e2e_s"] - ok["ttft_s"]) / (ok["output_tokens"] - 1)
    gaps = [g for itl in ok["itl_s"] if isinstance(itl, list) for g in itl]
    return {"tool": "kit runner", "requests": len(ok), "errors": int((~df["ok"]).sum()),
            "prompt_tokens_p50": ok["prompt_tokens"].median(), "output_tokens_p50": ok["output_tokens"].median(),
            "ttft_p50_ms": ok["ttft_s"].median() * 1000, "itl_p50_ms": per_token.median() * 1000,
            "itl_chunk_gap_p50_ms": pd.Series(gaps).median() * 1000 if gaps else None}


def guidellm_row(url: str, model: str, tokenizer: str, requests: int, prompt_tokens: int, output_tokens: int,
                 out: Path) -> dict:
    spec = guidellm.GuideLLMRun(url, model, streams=(1,), prompt_tokens=prompt_tokens, output_tokens=output_tokens,
                                max_requests=requests, max_seconds=600, tokenizer=tokenizer)
    row = guidellm.run(spec, out / "guidellm.json").iloc[0]
    return {"tool": "GuideLLM", "requests": int(row["requests"]), "errors": int(row["errored"]),
            "prompt_tokens_p50": row["prompt_tokens_p50"], "output_tokens_p50": row["output_tokens_p50"],
            "ttft_p50_ms": row["ttft_p50_ms"], "itl_p50_ms": row["itl_p50_ms"]}


ENGINE_ITL = "vllm:inter_token_latency_seconds"


def _cpu_s() -> tuple[float, float]:
    """CPU seconds (user + system) of this process and of its waited-for children so far."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime


def _engine_mean_ms(before: metrics.Snapshot, after: metrics.Snapshot, histogram: str) -> float | None:
    """Mean of a pod histogram between two snapshots (Δsum / Δcount over all pods), in ms."""
    total, count = 0.0, 0.0
    for pod in after.pods:
        s1, c1 = after.value(pod, histogram + "_sum"), after.value(pod, histogram + "_count")
        if s1 is None or c1 is None:
            continue
        s0, c0 = before.value(pod, histogram + "_sum") or 0.0, before.value(pod, histogram + "_count") or 0.0
        total, count = total + s1 - s0, count + c1 - c0
    return total / count * 1000 if count else None


def measured(run: Callable[[], dict], source: metrics.MetricsSource | None, in_process: bool) -> dict:
    """``run()``'s row plus the client's CPU seconds and wall time, and the pods' TTFT/ITL means meanwhile."""
    before = metrics.scrape(source) if source is not None else None
    cpu0, t0 = _cpu_s(), time.monotonic()
    row = run()
    cpu1, wall = _cpu_s(), time.monotonic() - t0
    row["client_cpu_s"] = (cpu1[0] - cpu0[0]) if in_process else (cpu1[1] - cpu0[1])
    row["wall_s"] = wall
    if before is not None and source is not None:
        after = metrics.scrape(source)
        row["engine_ttft_mean_ms"] = _engine_mean_ms(before, after, metrics.TTFT)
        row["engine_itl_mean_ms"] = _engine_mean_ms(before, after, ENGINE_ITL)
    return row


def compare(url: str, model: str, tokenizer: str, *, requests: int = 20, prompt_tokens: int = 256,
            output_tokens: int = 64, out_dir: str | Path | None = None,
            source: metrics.MetricsSource | None = None) -> pd.DataFrame:  # fmt: skip
    """The three rows (inference-perf's only when it is installed), measured one after the other; ``source``
    (the served pods' metrics) adds the engine's own TTFT/ITL during each client's run."""
    out = Path(out_dir or tempfile.mkdtemp(prefix="llmd-agreement-"))
    rows = [measured(lambda: kit_row(url, model, requests, prompt_tokens, output_tokens), source, True)]
    rows.append(measured(lambda: guidellm_row(url, model, tokenizer, requests, prompt_tokens, output_tokens, out),
                         source, False))  # fmt: skip
    if inference_perf.executable() is not None:
        spec = inference_perf.InferencePerfRun(url, model, tokenizer, prompt_tokens=prompt_tokens + CHATML_TOKENS,
                                               output_tokens=output_tokens, requests=requests)  # fmt: skip
        rows.append(measured(lambda: inference_perf.run(spec, out / "inference-perf"), source, False))
    frame = pd.DataFrame(rows).set_index("tool")
    base = frame.loc["kit runner"]
    for col in ("ttft_p50_ms", "itl_p50_ms"):
        frame[f"{col}_vs_kit_%"] = (frame[col] / base[col] - 1) * 100
    return frame


def _cpus(spec: str) -> set[int]:
    """``"1"``, ``"0,2"`` or ``"2-3"`` as a CPU set (taskset's list syntax)."""
    out: set[int] = set()
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def main(argv: list[str] | None = None) -> int:
    from llmd_lab.tokenizer import TOKENIZER_DIR

    p = argparse.ArgumentParser(prog="python -m llmd_lab.benchtools.agreement", description=__doc__.split("\n")[0])
    p.add_argument("--url", required=True, help="status.url of the LLMInferenceService (or a Service URL)")
    p.add_argument("--model", required=True, help="the served model name")
    p.add_argument("--tokenizer", default=str(TOKENIZER_DIR), help="tokenizer directory (default: the lab's)")
    p.add_argument("--requests", type=int, default=20)
    p.add_argument("--prompt-tokens", type=int, default=256)
    p.add_argument("--output-tokens", type=int, default=64)
    p.add_argument("--namespace", help="with --name: scrape the served pods for the engine's own TTFT/ITL")
    p.add_argument("--name", help="the LLMInferenceService's name")
    p.add_argument("--client-cpus", help="run the clients on these CPUs only, e.g. 1 or 2-3 (the lab elsewhere)")
    args = p.parse_args(argv)
    if args.client_cpus:
        os.sched_setaffinity(0, _cpus(args.client_cpus))  # the tools' processes inherit it
    source = None
    if args.namespace and args.name:
        from llmd_lab.connection import connect
        from llmd_lab.doctor import workload_selector

        conn = connect(args.namespace, start_lab=False)
        source = metrics.PodProxySource(conn.core, args.namespace, workload_selector(args.name))
    frame = compare(args.url, args.model, args.tokenizer, requests=args.requests, prompt_tokens=args.prompt_tokens,
                    output_tokens=args.output_tokens, source=source)
    print(frame.round(2).to_string())
    if inference_perf.executable() is None:
        print("inference-perf: not installed (python3.12 venv; set INFERENCE_PERF to its executable)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
