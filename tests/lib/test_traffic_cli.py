"""`python -m llmd_lab.traffic`: the in-cluster benchmark Job's entry point, run as the Job runs it."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest


def _run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llmd_lab.traffic", *args], capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".json"])
def test_runs_a_workload_and_writes_one_row_per_request(openai_server, tmp_path, suffix):
    out = tmp_path / "results" / f"run{suffix}"
    proc = _run("--url", openai_server.url, "--workload", "multi-turn", "--requests", "6",
                "--concurrency", "2", "--output", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    if suffix == ".csv":
        rows = pd.read_csv(out)
    elif suffix == ".jsonl":
        rows = pd.read_json(out, lines=True)
    else:
        doc = json.loads(out.read_text())
        rows = pd.DataFrame(doc["requests"])
        assert doc["summary"][0]["requests"] == 6 and doc["summary"][0]["errors"] == 0
    assert len(rows) == 6 and rows["ok"].all()
    assert rows["pod"].isna().all()  # no response header names the pod (vLLM sends none)
    assert {"ttft_s", "e2e_s", "cached_tokens", "session", "turn"} <= set(rows.columns)
    # the model was discovered from /v1/models (the Job passes none), and the server saw it
    assert {r["model"] for r in openai_server.fake.requests} == {"qwen"}
    assert "ttft_p95_ms" in proc.stdout and "cache_hit_rate" in proc.stdout  # the printed summary


def test_rate_mode_and_failures_set_the_exit_status(openai_server, tmp_path):
    proc = _run("--url", openai_server.url, "--workload", "random", "--rate", "200", "--requests", "4",
                "--model", "not-served")  # fmt: skip
    assert proc.returncode == 1  # every request got vLLM's 404 for an unknown model
    assert len(openai_server.fake.requests) == 4


def test_bad_arguments_say_what_to_fix(tmp_path):
    proc = _run("--url", "127.0.0.1:8000")
    assert proc.returncode == 2 and "http://" in proc.stderr
    proc = _run("--url", "http://127.0.0.1:9", "--output", str(tmp_path / "run.txt"))
    assert proc.returncode == 2 and ".csv" in proc.stderr
    proc = _run("--url", "http://127.0.0.1:9", "--concurrency", "2", "--rate", "1")
    assert proc.returncode == 2 and "not allowed with" in proc.stderr
    proc = _run("--url", "http://127.0.0.1:9")  # nothing listens there: cannot discover the model
    assert proc.returncode == 2 and "--model" in proc.stderr
