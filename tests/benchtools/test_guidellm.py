"""GuideLLM (the field's benchmark tool) run for real against a lab service, and the kit's wrapper around it."""

from __future__ import annotations

import importlib.util
import tempfile
import uuid
from pathlib import Path

import pytest
import yaml
from labhelpers import eventually, running_lab

from llmd_lab import deploy, manifests, metrics, viz
from llmd_lab.benchtools import SCENARIOS, GuideLLMError, GuideLLMRun, chart, load_report, run
from llmd_lab.connection import connect
from llmd_lab.doctor import workload_selector
from llmd_lab.tokenizer import TOKENIZER_DIR

MODEL = "Qwen/Qwen3-0.6B"
REPO = Path(__file__).resolve().parents[2]
URL = "http://127.0.0.1:9/ns/qwen"
CHATML_TOKENS = 8  # "<|im_start|>user\n" + "<|im_end|>\n<|im_start|>assistant\n" around GuideLLM's prompt


def _flag(argv: list[str], name: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == name]


def test_command_follows_guidellm_08_cli_and_is_bounded() -> None:
    argv = GuideLLMRun(URL, MODEL, streams=(1, 4), tokenizer=TOKENIZER_DIR).command(Path("/r/out.json"))
    assert argv[:2] == ["guidellm", "run"]
    assert _flag(argv, "--profile") == ["kind=concurrent,streams=1"]
    assert argv[argv.index("--override") + 1 : argv.index("--override") + 3] == ["profile.streams", "1,4"]
    assert _flag(argv, "--backend") == [f"kind=openai_http,target={URL},model={MODEL}"]
    assert _flag(argv, "--tokenizer") == [f"kind=hf_auto,model={TOKENIZER_DIR}"]
    assert _flag(argv, "--constraint") == ["kind=max_requests,count=40", "kind=max_duration,seconds=120"]
    assert _flag(argv, "--output") == ["kind=json,path=/r/out.json"]
    scenario = GuideLLMRun(URL, MODEL, scenario=SCENARIOS[1], tokenizer=None).command(Path("o.json"))
    assert _flag(scenario, "--scenario") == ["rhaiis/concurrent-1k-1k-multiturn"]
    assert "--data" not in scenario and "--tokenizer" not in scenario  # a cluster: the model's own tokenizer
    assert _flag(GuideLLMRun(URL, MODEL, profile="sweep", rate=5).command(Path("o")), "--profile") == [
        "kind=sweep,sweep_size=5"
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target": "qwen:8000"}, "http"),
        ({"scenario": "rhaiis/nope"}, "unknown scenario"),
        ({"profile": "fastest"}, "unknown profile"),
        ({"profile": "constant"}, "needs rate"),
        ({"streams": ()}, "needs streams"),
        ({"max_requests": None, "max_seconds": None}, "bounded"),
    ],
)
def test_bad_runs_are_refused_with_what_to_fix(kwargs: dict, message: str) -> None:
    spec = GuideLLMRun(**{"target": URL, "model": MODEL, **kwargs})
    with pytest.raises(GuideLLMError, match=message):
        spec.command(Path("out.json"))


def test_a_file_that_is_no_report_says_so(tmp_path: Path) -> None:
    (tmp_path / "r.json").write_text('{"benchmarks": [{"config": {}}]}')
    with pytest.raises(GuideLLMError, match="not a GuideLLM"):
        load_report(tmp_path / "r.json")


@pytest.fixture
def fast_lab(tmp_path, monkeypatch):
    """A lab of its own at --time-scale 200 (model loading well under a second), reached through LLMD_LAB_HOME."""
    with running_lab(tmp_path / "lab", "--time-scale", "200") as lab:
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        for key, value in {"KUBECONFIG": tmp_path / "none", "HOME": tmp_path, "LLMD_LAB_HOME": lab.home}.items():
            monkeypatch.setenv(key, str(value))
        yield lab


@pytest.mark.slow
def test_guidellm_against_a_lab_service_counts_tokens_like_the_pods(fast_lab, tmp_path: Path) -> None:
    # find_spec, not importorskip: importing guidellm installs uvloop's event-loop policy for the whole process.
    if importlib.util.find_spec("guidellm") is None:
        pytest.skip("the bench extra installs GuideLLM")
    conn = connect("private-ai", start_lab=False)
    obj = manifests.llm_inference_service("qwen", f"hf://{MODEL}", model_name=MODEL, replicas=1, gpu="g6.4xlarge",
                                          queue="llmd", max_model_len=4096)  # fmt: skip
    deploy.apply(conn, obj)
    url = deploy.wait_ready(conn, "qwen", timeout_s=120, progress=False)["status"]["url"]
    source = metrics.PodProxySource(conn.core, "private-ai", workload_selector("qwen"))
    before = metrics.scrape(source)
    spec = GuideLLMRun(url, MODEL, streams=(1, 2), prompt_tokens=128, output_tokens=16, max_requests=8,
                       max_seconds=120, tokenizer=TOKENIZER_DIR)  # fmt: skip
    frame = run(spec, tmp_path / "guidellm.json", timeout_s=280)
    after = metrics.scrape(source)

    assert frame["concurrency"].tolist() == [1, 2] and frame["requests"].tolist() == [8, 8]
    assert (frame["errored"] == 0).all()
    assert (frame["prompt_tokens_p50"] == 128 + CHATML_TOKENS).all()  # GuideLLM and the pod count alike
    assert (frame["output_tokens_p50"] == 16).all()
    assert (frame["ttft_p50_ms"] > 0).all() and (frame["itl_p50_ms"] > 0).all()
    d = metrics.deltas(before, after)
    assert d["requests"].sum() >= 16  # GuideLLM may send a request past the count before stopping
    per_request = d["prompt_tokens"].sum() / d["requests"].sum()
    assert per_request == 128 + CHATML_TOKENS
    assert frame.attrs["guidellm_version"] == "0.8.1"
    assert viz.to_svg(chart(frame)).startswith("<svg")

    _run_the_jobs_pod_template(conn, url)
    assert deploy.delete(conn, "qwen", timeout_s=60)


def _run_the_jobs_pod_template(conn, url: str) -> None:
    """assets/jobs/guidellm-job.yaml's pod, created as a Job controller would (the lab has none yet): the
    kubelet runs the real GuideLLM in it, against status.url, and its report is a GuideLLM report."""
    job = yaml.safe_load((REPO / "assets" / "jobs" / "guidellm-job.yaml").read_text())
    template = job["spec"]["template"]
    [container] = template["spec"]["containers"]
    values = {"TARGET_URL": url, "STREAMS": "1", "MAX_REQUESTS": "4", "DATA": "kind=synthetic_text,prompt_tokens=64,output_tokens=8"}
    for item in container["env"]:
        if item["name"] in values:
            item["value"] = values[item["name"]]
    name = f"llmd-guidellm-{uuid.uuid4().hex[:5]}"
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": template["metadata"]["labels"]},
           "spec": template["spec"]}  # fmt: skip
    conn.core.create_namespaced_pod("private-ai", pod)
    try:
        def first_exit():
            statuses = conn.core.read_namespaced_pod(name, "private-ai").status.container_statuses or []
            return statuses and (statuses[0].last_state.terminated or statuses[0].state.terminated)

        exited = eventually(first_exit, 280, "the GuideLLM container's first exit")
        assert (exited.exit_code, exited.reason) == (0, "Completed")
        report = Path(tempfile.gettempdir()) / "llmd-lab-files" / "private-ai" / name / "results" / f"guidellm-{name}.json"
        frame = load_report(report)
        assert frame["requests"].tolist() == [4] and (frame["prompt_tokens_p50"] == 64 + CHATML_TOKENS).all()
    finally:
        conn.core.delete_namespaced_pod(name, "private-ai", grace_period_seconds=0)
