"""inference-perf (kubernetes-sigs, Python >= 3.12, its own virtualenv) driven from the kit: the config it is
given, the summary it writes, and — where it is installed ($INFERENCE_PERF or on PATH) — a real run against
a lab service through status.url, offline with the lab's shared tokenizer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from labhelpers import running_lab

from llmd_lab import deploy, manifests
from llmd_lab.benchtools import inference_perf
from llmd_lab.benchtools.inference_perf import InferencePerfError, InferencePerfRun, load_summary
from llmd_lab.connection import connect
from llmd_lab.tokenizer import TOKENIZER_DIR

MODEL = "Qwen/Qwen3-0.6B"
SUMMARY = Path(__file__).parent / "testdata" / "inference-perf-0.7.0-summary.json"


def test_config_is_bounded_fixed_length_and_offline(tmp_path: Path) -> None:
    config = InferencePerfRun("http://gw/ns/qwen", MODEL, str(TOKENIZER_DIR), prompt_tokens=100, output_tokens=10,
                              requests=5, concurrency=2).config(tmp_path)  # fmt: skip
    assert config["load"] == {"type": "concurrent", "stages": [{"num_requests": 5, "concurrency_level": 2}]}
    assert config["api"] == {"type": "completion", "streaming": True}  # its random generator's only API
    assert config["data"]["input_distribution"] == {"min": 100, "max": 100, "mean": 100, "std_dev": 0, "total_count": 5}
    assert config["server"]["base_url"] == "http://gw/ns/qwen" and config["server"]["ignore_eos"] is True
    assert config["tokenizer"] == {"pretrained_model_name_or_path": str(TOKENIZER_DIR)}


@pytest.mark.parametrize(("kwargs", "message"), [({"target": "gw:80"}, "http"), ({"requests": 0}, "bounded")])
def test_bad_runs_are_refused_with_what_to_fix(tmp_path: Path, kwargs: dict, message: str) -> None:
    spec = InferencePerfRun(**{"target": "http://gw", "model": MODEL, "tokenizer": "t", **kwargs})
    with pytest.raises(InferencePerfError, match=message):
        spec.config(tmp_path)


def test_summary_becomes_one_row_in_ms() -> None:
    row = load_summary(SUMMARY)
    raw = json.loads(SUMMARY.read_text())["successes"]
    assert row["tool"] == "inference-perf" and row["requests"] == 10 and row["errors"] == 0
    assert row["prompt_tokens_p50"] == 256 and row["output_tokens_p50"] == 32
    assert row["ttft_p50_ms"] == pytest.approx(raw["latency"]["time_to_first_token"]["median"] * 1000)
    assert row["itl_p50_ms"] == pytest.approx(raw["latency"]["time_per_output_token"]["median"] * 1000)


def test_a_file_that_is_no_summary_says_so(tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text('{"successes": {"count": 1, "latency": {}}}')
    with pytest.raises(InferencePerfError, match="not an inference-perf"):
        load_summary(tmp_path / "s.json")


@pytest.mark.slow
def test_inference_perf_against_a_lab_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if inference_perf.executable() is None:
        pytest.skip("inference-perf not installed: it needs Python >= 3.12 in its own venv "
                    "(python3.12 -m venv ip && ip/bin/pip install inference-perf==0.7.0; INFERENCE_PERF=ip/bin/inference-perf)")
    with running_lab(tmp_path / "lab", "--time-scale", "200") as lab:
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        for key, value in {"KUBECONFIG": lab.kubeconfig, "HOME": tmp_path, "LLMD_LAB_HOME": lab.home}.items():
            monkeypatch.setenv(key, str(value))
        conn = connect("private-ai", start_lab=False)
        deploy.apply(conn, manifests.llm_inference_service("qwen", f"hf://{MODEL}", model_name=MODEL, replicas=1,
                                                           gpu="g6.4xlarge", queue="llmd", max_model_len=4096))
        url = deploy.wait_ready(conn, "qwen", timeout_s=120, progress=False)["status"]["url"]
        spec = InferencePerfRun(url, MODEL, str(TOKENIZER_DIR), prompt_tokens=64, output_tokens=8, requests=6)
        row = inference_perf.run(spec, tmp_path / "ip", timeout_s=280)
    assert (row["requests"], row["errors"]) == (6, 0)
    assert (row["prompt_tokens_p50"], row["output_tokens_p50"]) == (64, 8)  # the pods count as the client does
    assert row["ttft_p50_ms"] > 0 and row["itl_p50_ms"] > 0
