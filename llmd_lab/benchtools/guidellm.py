"""Run a GuideLLM profile against an OpenAI-compatible URL and read its JSON report into pandas.

Why a wrapper and not a notebook ``!guidellm`` line: the command line has many ``kind=...`` options whose
spelling changes between releases (this module follows GuideLLM 0.8.1's ``guidellm run``); one place builds
it, bounds every run (a request count and a time limit, never open-ended), keeps it offline when the tokenizer
is a local directory, and turns the report into the same columns the kit's own runner summarises, so
:func:`llmd_lab.viz.rate_sweep` draws either.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import altair as alt
import pandas as pd

from llmd_lab import viz

# GuideLLM 0.8.1's built-in Red Hat AI Inference Server scenarios (`guidellm run --help` lists them).
SCENARIOS = (
    "rhaiis/concurrent-1k-1k-equal",
    "rhaiis/concurrent-1k-1k-multiturn",
    "rhaiis/concurrent-2ki-128-equal",
    "rhaiis/concurrent-512-2ki-norm",
    "rhaiis/concurrent-8k-1k-equal",
    "rhaiis/concurrent-8k-800-norm",
    "rhaiis/concurrent-100k-1k-equal",
)
PROFILES = ("synchronous", "concurrent", "sweep", "throughput", "constant", "poisson")
REPORT_COLUMNS = (
    "benchmark", "strategy", "concurrency", "rate", "requests", "errored", "incomplete", "prompt_tokens_p50",
    "output_tokens_p50", "ttft_p50_ms", "ttft_p95_ms", "itl_p50_ms", "itl_p95_ms", "tpot_p50_ms",
    "latency_p50_s", "requests_per_s", "output_tokens_per_s",
)  # fmt: skip


class GuideLLMError(RuntimeError):
    """GuideLLM is missing, was given bad options, or its run failed (the message says which and what to do)."""


@dataclass
class GuideLLMRun:
    """One bounded GuideLLM run: where to send, what profile, what prompts, how long.

    ``streams`` are the concurrency levels of a ``concurrent`` profile (several give a sweep of them);
    ``rate`` is requests per second for ``constant``/``poisson`` or the number of rates of ``sweep``.
    ``tokenizer`` is a local directory or a Hugging Face name; None means the served model's (a download).
    ``scenario`` (one of :data:`SCENARIOS`) replaces profile and data with GuideLLM's built-in preset.
    """

    target: str
    model: str
    profile: str = "concurrent"
    streams: Sequence[int] = (1, 2, 4)
    rate: float | None = None
    prompt_tokens: int = 256
    output_tokens: int = 64
    max_requests: int | None = 40
    max_seconds: float | None = 120.0
    tokenizer: str | Path | None = None
    scenario: str | None = None
    extra_args: Sequence[str] = field(default_factory=tuple)

    def check(self) -> None:
        """Refuse what GuideLLM would refuse later, or what would run unbounded."""
        if not self.target.startswith(("http://", "https://")):
            raise GuideLLMError(f"target must be an http(s) URL such as status.url, got {self.target!r}")
        if self.scenario is not None and self.scenario not in SCENARIOS:
            raise GuideLLMError(f"unknown scenario {self.scenario!r}; pick one of {', '.join(SCENARIOS)}")
        if self.profile not in PROFILES:
            raise GuideLLMError(f"unknown profile {self.profile!r}; pick one of {', '.join(PROFILES)}")
        if self.profile == "concurrent" and (not self.streams or min(self.streams) < 1):
            raise GuideLLMError("a concurrent profile needs streams, e.g. streams=(1, 2, 4)")
        if self.profile in ("constant", "poisson", "sweep") and not self.rate:
            raise GuideLLMError(f"profile {self.profile!r} needs rate=")
        if self.max_requests is None and self.max_seconds is None:
            raise GuideLLMError("set max_requests or max_seconds: a benchmark run must be bounded")

    def _profile_args(self) -> list[str]:
        if self.profile == "concurrent":
            args = ["--profile", f"kind=concurrent,streams={self.streams[0]}"]
            if len(self.streams) > 1:
                args += ["--override", "profile.streams", ",".join(str(s) for s in self.streams)]
            return args
        if self.profile in ("constant", "poisson", "sweep"):
            key = "sweep_size" if self.profile == "sweep" else "rate"
            value = int(self.rate) if self.profile == "sweep" else self.rate
            return ["--profile", f"kind={self.profile},{key}={value}"]
        return ["--profile", f"kind={self.profile}"]

    def command(self, output: Path, executable: str = "guidellm") -> list[str]:
        """The ``guidellm run`` argv that writes its JSON report to ``output``."""
        self.check()
        args = [executable, "run"]
        if self.scenario:
            args += ["--scenario", self.scenario]
        else:
            args += self._profile_args()
            data = f"kind=synthetic_text,prompt_tokens={self.prompt_tokens},output_tokens={self.output_tokens}"
            args += ["--data", data]
        args += ["--backend", f"kind=openai_http,target={self.target},model={self.model}"]
        if self.tokenizer is not None:
            args += ["--tokenizer", f"kind=hf_auto,model={self.tokenizer}"]
        if self.max_requests is not None:
            args += ["--constraint", f"kind=max_requests,count={self.max_requests}"]
        if self.max_seconds is not None:
            args += ["--constraint", f"kind=max_duration,seconds={self.max_seconds:g}"]
        args += ["--output", f"kind=json,path={output}", "--disable-progress", *self.extra_args]
        return args


def _executable() -> str:
    beside = Path(sys.executable).with_name("guidellm")
    found = str(beside) if beside.exists() else shutil.which("guidellm")
    if not found:
        raise GuideLLMError("GuideLLM is not installed: pip install 'llmd_lab[bench]' (or pip install guidellm)")
    return found


def run(spec: GuideLLMRun, output: str | Path, *, timeout_s: float = 900.0) -> pd.DataFrame:
    """Run ``spec`` to completion, write the JSON report to ``output`` and return :func:`load_report` of it.

    A local tokenizer directory makes the run offline (``HF_HUB_OFFLINE=1``): nothing is downloaded.
    """
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    argv = spec.command(output, _executable())
    env = dict(os.environ)
    if spec.tokenizer is not None and Path(spec.tokenizer).is_dir():
        env["HF_HUB_OFFLINE"] = "1"
    try:
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise GuideLLMError(f"guidellm ran past {timeout_s:g}s; lower max_requests/max_seconds") from exc
    if proc.returncode != 0 or not output.exists():
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise GuideLLMError(f"guidellm exited {proc.returncode}:\n{tail}")
    return load_report(output)


def _stat(metrics: dict[str, Any], name: str, key: str = "median") -> float | None:
    successful = (metrics.get(name) or {}).get("successful") or {}
    if key == "median":
        return successful.get("median")
    return (successful.get("percentiles") or {}).get(key)


def _row(benchmark: dict[str, Any], index: int) -> dict[str, Any]:
    strategy = benchmark["config"]["strategy"]
    m = benchmark["metrics"]
    totals = m["request_totals"]
    return {
        "benchmark": index,
        "strategy": strategy["type_"],
        "concurrency": strategy.get("streams") or _stat(m, "request_concurrency"),
        "rate": strategy.get("rate") or _stat(m, "requests_per_second"),
        "requests": totals["successful"],
        "errored": totals["errored"],
        "incomplete": totals.get("incomplete", 0),  # cut off when a constraint ended the step
        "prompt_tokens_p50": _stat(m, "prompt_token_count"),
        "output_tokens_p50": _stat(m, "output_token_count"),
        "ttft_p50_ms": _stat(m, "time_to_first_token_ms"),
        "ttft_p95_ms": _stat(m, "time_to_first_token_ms", "p95"),
        "itl_p50_ms": _stat(m, "inter_token_latency_ms"),
        "itl_p95_ms": _stat(m, "inter_token_latency_ms", "p95"),
        "tpot_p50_ms": _stat(m, "time_per_output_token_ms"),
        "latency_p50_s": _stat(m, "request_latency"),
        "requests_per_s": m["requests_per_second"]["successful"]["mean"],
        "output_tokens_per_s": m["output_tokens_per_second"]["successful"]["mean"],
    }


def load_report(path: str | Path) -> pd.DataFrame:
    """One row per benchmark of a GuideLLM JSON report, in :data:`REPORT_COLUMNS` (latencies in ms/s)."""
    try:
        report = json.loads(Path(path).read_text(encoding="utf-8"))
        benchmarks = report["benchmarks"]
        rows = [_row(b, i) for i, b in enumerate(benchmarks)]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise GuideLLMError(f"{path} is not a GuideLLM 0.8 JSON report ({exc!r})") from exc
    frame = pd.DataFrame(rows, columns=list(REPORT_COLUMNS))
    frame.attrs["guidellm_version"] = report.get("metadata", {}).get("guidellm_version")
    return frame


def chart(frame: pd.DataFrame, *, y: str = "ttft_p50_ms", x: str = "concurrency", by: str = "strategy",
          slo_ms: float | None = None) -> alt.Chart:  # fmt: skip
    """The report drawn with the kit's own rate-sweep chart (latency against load, one line per ``by``)."""
    return viz.rate_sweep(frame, x=x, y=y, by=by, slo_ms=slo_ms)
