"""Run kubernetes-sigs/inference-perf (the llm-d project's own harness) against an OpenAI-compatible URL.

Why a separate executable and not an import: inference-perf needs Python ≥ 3.12 while the kit supports
older interpreters, so it lives in a virtualenv of its own and is found as ``$INFERENCE_PERF`` or
``inference-perf`` on ``PATH``. One config (written here, bounded by a request count) drives its
``concurrent`` load over fixed-length random prompts on the completions API (its ``random`` data generator
supports no other); its summary JSON becomes one row with the kit's column names. Its ITL equivalent is
``time_per_output_token`` ((latency − TTFT) / (tokens − 1) per request), which is GuideLLM's definition too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


class InferencePerfError(RuntimeError):
    """inference-perf is missing, refused the config or produced no summary; the message says what to fix."""


def executable() -> str | None:
    """``$INFERENCE_PERF`` if set and executable, else ``inference-perf`` on ``PATH``, else None."""
    env = os.environ.get("INFERENCE_PERF")
    if env:
        return env if Path(env).is_file() and os.access(env, os.X_OK) else None
    return shutil.which("inference-perf")


@dataclass(frozen=True)
class InferencePerfRun:
    """One bounded run: ``requests`` prompts of exactly ``prompt_tokens`` tokens, ``concurrency`` in flight."""

    target: str
    model: str
    tokenizer: str
    prompt_tokens: int = 256
    output_tokens: int = 64
    requests: int = 20
    concurrency: int = 1

    def config(self, out_dir: Path) -> dict[str, Any]:
        if not self.target.startswith(("http://", "https://")):
            raise InferencePerfError(f"target must be an http(s) URL (status.url), got {self.target!r}")
        if self.requests < 1 or self.concurrency < 1:
            raise InferencePerfError("requests and concurrency must be at least 1: a run must be bounded")

        def fixed(n: int) -> dict[str, int]:
            return {"min": n, "max": n, "mean": n, "std_dev": 0, "total_count": self.requests}

        return {
            "load": {"type": "concurrent",
                     "stages": [{"num_requests": self.requests, "concurrency_level": self.concurrency}]},
            "api": {"type": "completion", "streaming": True},
            "server": {"type": "vllm", "model_name": self.model, "base_url": self.target, "ignore_eos": True},
            "tokenizer": {"pretrained_model_name_or_path": str(self.tokenizer)},
            "data": {"type": "random", "input_distribution": fixed(self.prompt_tokens),
                     "output_distribution": fixed(self.output_tokens)},
            "report": {"request_lifecycle": {"summary": True, "per_stage": False, "per_request": False}},
            "storage": {"local_storage": {"path": str(out_dir)}},
        }


def load_summary(path: str | Path) -> dict[str, Any]:
    """One row from ``summary_lifecycle_metrics.json`` in the kit's column names (ms for latencies)."""
    data = json.loads(Path(path).read_text())
    ok = data.get("successes") or {}
    latency = ok.get("latency") or {}
    if "time_to_first_token" not in latency:
        raise InferencePerfError(f"{path} is not an inference-perf lifecycle summary of a streaming run")

    def ms(name: str) -> float:
        return float(latency[name]["median"]) * 1000

    return {"tool": "inference-perf", "requests": int(ok.get("count", 0)),
            "errors": int((data.get("failures") or {}).get("count", 0)),
            "prompt_tokens_p50": (ok.get("prompt_tokens") or {}).get("median"),
            "output_tokens_p50": (ok.get("output_tokens") or {}).get("median"),
            "ttft_p50_ms": ms("time_to_first_token"), "itl_p50_ms": ms("time_per_output_token")}


def run(spec: InferencePerfRun, out_dir: str | Path, *, timeout_s: float = 600.0) -> dict[str, Any]:
    """Run ``spec`` offline (``HF_HUB_OFFLINE=1``; the tokenizer is a local directory) and load its summary."""
    exe = executable()
    if exe is None:
        raise InferencePerfError("inference-perf is not installed: it needs Python >= 3.12, e.g. "
                                 "python3.12 -m venv ip && ip/bin/pip install inference-perf, then set "
                                 "INFERENCE_PERF=ip/bin/inference-perf")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = out / "config.yaml"
    config.write_text(yaml.safe_dump(spec.config(out / "report"), sort_keys=False))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    try:
        proc = subprocess.run([exe, "--config_file", str(config)], env=env, capture_output=True, text=True,
                              timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise InferencePerfError(f"inference-perf ran past {timeout_s:g}s; lower requests") from exc
    summary = out / "report" / "summary_lifecycle_metrics.json"
    if proc.returncode != 0 or not summary.exists():
        tail = "\n".join(line[:300] for line in (proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise InferencePerfError(f"inference-perf exited {proc.returncode}:\n{tail}")
    return load_summary(summary)
