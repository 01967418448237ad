"""Agreement check: one workload, one service, three clients — the kit's runner, GuideLLM, inference-perf.

Why: learners compare the kit's numbers with the tools they use at work; the three must agree, or the
difference must be explained. Every client sends the same shape of load one after the other: unique
prompts, fixed output length, one request in flight. Prompt lengths are matched on the server's count: the
kit's random prompts carry an id prefix (≈13 tokens on top of ``prompt_tokens``), so GuideLLM is given the
kit's measured server-side count minus its 8 ChatML tokens and inference-perf (completions API, no
template) the count itself. ITL is (latency − TTFT) / (output tokens − 1) per request for all three (the
kit's chunk-gap median is shown as well). Usage::

    python -m llmd_lab.benchtools.agreement --url "$(oc get llmisvc qwen -o jsonpath='{.status.url}')" \\
        --model Qwen/Qwen3-0.6B [--tokenizer DIR] [--requests 20]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import pandas as pd

from llmd_lab import traffic
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


def compare(url: str, model: str, tokenizer: str, *, requests: int = 20, prompt_tokens: int = 256,
            output_tokens: int = 64, out_dir: str | Path | None = None) -> pd.DataFrame:
    """The three rows (inference-perf's only when it is installed), measured one after the other."""
    out = Path(out_dir or tempfile.mkdtemp(prefix="llmd-agreement-"))
    rows = [kit_row(url, model, requests, prompt_tokens, output_tokens)]
    server_prompt = int(rows[0]["prompt_tokens_p50"] or prompt_tokens + CHATML_TOKENS)
    rows.append(guidellm_row(url, model, tokenizer, requests, server_prompt - CHATML_TOKENS, output_tokens, out))
    if inference_perf.executable() is not None:
        spec = inference_perf.InferencePerfRun(url, model, tokenizer, prompt_tokens=server_prompt,
                                               output_tokens=output_tokens, requests=requests)
        rows.append(inference_perf.run(spec, out / "inference-perf"))
    frame = pd.DataFrame(rows).set_index("tool")
    base = frame.loc["kit runner"]
    for col in ("ttft_p50_ms", "itl_p50_ms"):
        frame[f"{col}_vs_kit_%"] = (frame[col] / base[col] - 1) * 100
    return frame


def main(argv: list[str] | None = None) -> int:
    from llmd_lab.tokenizer import TOKENIZER_DIR

    p = argparse.ArgumentParser(prog="python -m llmd_lab.benchtools.agreement", description=__doc__.split("\n")[0])
    p.add_argument("--url", required=True, help="status.url of the LLMInferenceService (or a Service URL)")
    p.add_argument("--model", required=True, help="the served model name")
    p.add_argument("--tokenizer", default=str(TOKENIZER_DIR), help="tokenizer directory (default: the lab's)")
    p.add_argument("--requests", type=int, default=20)
    p.add_argument("--prompt-tokens", type=int, default=256)
    p.add_argument("--output-tokens", type=int, default=64)
    args = p.parse_args(argv)
    frame = compare(args.url, args.model, args.tokenizer, requests=args.requests, prompt_tokens=args.prompt_tokens,
                    output_tokens=args.output_tokens)
    print(frame.round(2).to_string())
    if inference_perf.executable() is None:
        print("inference-perf: not installed (python3.12 venv; set INFERENCE_PERF to its executable)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
