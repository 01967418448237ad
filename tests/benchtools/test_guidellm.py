"""GuideLLM (the field's benchmark tool) run for real against a lab service, and the kit's wrapper around it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml
from labhelpers import api_client, eventually, run_cli

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

    assert frame["concurrency"].tolist() == [1, 2]
    # GuideLLM may cancel the request in flight when max_requests ends a step: it is reported incomplete
    assert (frame["requests"] + frame["incomplete"]).tolist() == [8, 8] and (frame["requests"] >= 7).all()
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

    _run_the_shipped_job_as_attendee(fast_lab, url)
    assert deploy.delete(conn, "qwen", timeout_s=60)


def _run_the_shipped_job_as_attendee(lab, url: str) -> None:
    """assets/jobs/pvc.yaml + guidellm-job.yaml, applied by attendee user1 in their project with only the
    documented edits (TARGET_URL and a smaller load): the Job controller creates the pod, the claim binds
    when it schedules, the kubelet runs the real GuideLLM once (restartPolicy Never), the Job completes, and
    the report is on the volume and the console table in the pod's log."""
    from kubernetes import client

    found = run_cli(lab.home, "kubeconfig", "--user", "user1")
    assert found.returncode == 0, found.stderr
    api = api_client(Path(found.stdout.strip()))
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    pvc = yaml.safe_load((REPO / "assets" / "jobs" / "pvc.yaml").read_text())
    job = yaml.safe_load((REPO / "assets" / "jobs" / "guidellm-job.yaml").read_text())
    [container] = job["spec"]["template"]["spec"]["containers"]
    values = {"TARGET_URL": url, "STREAMS": "1", "MAX_REQUESTS": "4", "DATA": "kind=synthetic_text,prompt_tokens=64,output_tokens=8"}
    for item in container["env"]:
        if item["name"] in values:
            item["value"] = values[item["name"]]
    core.create_namespaced_persistent_volume_claim("user1", pvc)
    batch.create_namespaced_job("user1", job)

    def finished():
        status = batch.read_namespaced_job("llmd-guidellm", "user1").status
        done = [c for c in status.conditions or [] if c.type in ("Complete", "Failed") and c.status == "True"]
        return done and (done[0], status)

    condition, status = eventually(finished, 280, "the GuideLLM Job to finish")
    [pod] = core.list_namespaced_pod("user1", label_selector="batch.kubernetes.io/job-name=llmd-guidellm").items
    log = core.read_namespaced_pod_log(pod.metadata.name, "user1")
    assert condition.type == "Complete", log[-3000:]
    assert (status.succeeded, status.failed, status.active) == (1, None, None)
    assert pod.status.phase == "Succeeded" and pod.status.container_statuses[0].restart_count == 0
    assert pod.metadata.labels["job-name"] == "llmd-guidellm" and pod.metadata.owner_references[0].kind == "Job"
    claim = core.read_namespaced_persistent_volume_claim("llmd-benchmark-results", "user1")
    assert (claim.status.phase, claim.spec.storage_class_name) == ("Bound", "gp3-csi")
    report = lab.home / "volumes" / claim.spec.volume_name / f"guidellm-{pod.metadata.name}.json"
    frame = load_report(report)
    assert frame["requests"].tolist() == [4] and (frame["prompt_tokens_p50"] == 64 + CHATML_TOKENS).all()
    assert "Request Latency" in log or "TTFT" in log  # GuideLLM's console table, readable with oc logs
    batch.delete_namespaced_job("llmd-guidellm", "user1", propagation_policy="Background")


def test_container_paths_land_on_the_claims_volume_or_the_pods_scratch(tmp_path: Path) -> None:
    from llmd_lab.sim.guidellm import host_path, lab_argv

    mounts = {"/results": tmp_path / "pv-a", "/results/deep": tmp_path / "pv-b"}
    scratch = tmp_path / "scratch"
    assert host_path("/results/g.json", scratch, mounts) == str(tmp_path / "pv-a" / "g.json")
    assert host_path("/results/deep/x/g.json", scratch, mounts) == str(tmp_path / "pv-b" / "x" / "g.json")
    assert host_path("/resultsX/g.json", scratch, mounts) == str(scratch / "resultsX" / "g.json")
    assert host_path("rel.json", scratch, mounts) == "rel.json"
    argv = lab_argv(["--tokenizer", "kind=hf_auto,model=Qwen/Qwen3-0.6B", "--output", "kind=json,path=/results/r.json"],
                    scratch, mounts)  # fmt: skip
    assert argv[1] == f"kind=hf_auto,model={TOKENIZER_DIR}"
    assert argv[3] == f"kind=json,path={tmp_path / 'pv-a' / 'r.json'}"


@pytest.mark.anyio
async def test_stopping_the_container_kills_the_benchmark_and_its_workers(tmp_path: Path, monkeypatch) -> None:
    """A GuideLLM stuck on a vanished backend must not outlive its pod: the kubelet's cancel kills the whole
    process group (GuideLLM's worker processes too)."""
    import asyncio
    import os

    from llmd_lab.sim import guidellm as sim_guidellm

    pids = tmp_path / "pids"
    fake = tmp_path / "guidellm"
    fake.write_text(f"#!/bin/sh\nsleep 300 &\necho $$ $! > {pids}\necho started\nwait\n")
    fake.chmod(0o755)
    monkeypatch.setattr(sim_guidellm, "_executable", lambda: str(fake))
    lines: list[str] = []
    task = asyncio.create_task(sim_guidellm.run(["guidellm", "run"], {}, lines.append, tmp_path / "scratch"))

    async def started() -> None:
        while "started" not in lines:
            await asyncio.sleep(0.02)

    await asyncio.wait_for(started(), 30)  # a failure deadline: the fake prints at once
    main, worker = (int(p) for p in pids.read_text().split())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        except FileNotFoundError:
            return False
        return state != "Z"  # a zombie has exited; only its parent (sleep's: init) has not reaped it yet

    async def both_gone() -> None:
        while alive(main) or alive(worker):
            await asyncio.sleep(0.02)

    await asyncio.wait_for(both_gone(), 30)
