"""The whole workshop flow against the lab: connect → preflight → deploy → traffic → metrics → explain → delete."""

from __future__ import annotations

import pandas as pd
import pytest

from llmd_lab import deploy, doctor, manifests, metrics, preflight, traffic, viz
from llmd_lab.connection import connect

MODEL = "Qwen/Qwen3-0.6B"


@pytest.fixture
def fast_lab(tmp_path, lab_cli, monkeypatch):
    """A lab of its own at --time-scale 200, so model loading takes well under a second."""
    home = tmp_path / "lab"
    started = lab_cli(home, "up", "--port", "0", "--time-scale", "200")
    if started.returncode != 0:
        pytest.fail(f"llmd-lab up failed:\n{started.stderr}")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("LLMD_LAB_HOME", str(home))
    yield home
    lab_cli(home, "down")


@pytest.mark.slow
def test_connect_preflight_deploy_traffic_metrics_delete(fast_lab):
    conn = connect("private-ai", start_lab=False)
    assert conn.is_lab

    checks = preflight.run(conn, replicas=2, queue="llmd").set_index("check")
    for name in ("GPUs for the planned deployment", "Gateway openshift-ingress/openshift-ai-inference",
                 "Kueue LocalQueue", "Kueue ClusterQueues", "KServe presets (LLMInferenceServiceConfig)"):  # fmt: skip
        assert checks.loc[name, "status"] == "pass", checks.loc[name, "evidence"]

    obj = manifests.llm_inference_service("qwen", f"hf://{MODEL}", model_name=MODEL, replicas=2, gpu="g6.4xlarge",
                                          queue="llmd", max_model_len=4096,
                                          vllm_args=("--disable-uvicorn-access-log",
                                                     "--enable-prompt-tokens-details"))  # fmt: skip
    deploy.apply(conn, obj)
    ready = deploy.wait_ready(conn, "qwen", timeout_s=120, progress=False)
    assert ready["status"]["url"].endswith("/private-ai/qwen")
    ep = deploy.endpoints(conn, "qwen")
    assert ep.service and ep.service.startswith("http://127.2.")

    source = metrics.PodProxySource(conn.core, "private-ai", doctor.workload_selector("qwen"))
    before = metrics.scrape(source)
    assert len(before.pods) == 2 and not before.errors
    wl = traffic.shared_system_prompt(10, system_tokens=400, max_tokens=8)
    frames, pods_used = [], {}
    for mode, target in ep.targets().items():  # one metrics window per mode: no response names the pod
        with metrics.Window(source) as window:
            frames.append(traffic.compare({mode: target}, wl, model=ep.model, concurrency=2, progress=False))
        pods_used[mode] = int((window.requests_per_pod()["requests"] > 0).sum())
    df = pd.concat(frames, ignore_index=True)
    after = metrics.scrape(source)
    assert df["ok"].all(), df[~df["ok"]]["error"].tolist()
    per_mode = traffic.summary(df)
    # the gateway's EPP keeps the shared prompt on one pod; the Service spreads it over both
    assert pods_used == {"llm-d": 1, "round-robin": 2}
    assert per_mode.loc["llm-d", "cache_hit_rate"] > 0.5
    d = metrics.deltas(before, after)
    assert d["requests"].sum() == len(df)
    assert d["prefix_cache_hits"].sum() == df["cached_tokens"].fillna(0).sum()
    engine = metrics.pool_quantiles(before, after)  # engine-side TTFT over both pods
    assert engine[0.5] is not None and engine[0.5] <= engine[0.95] <= engine[0.99]
    frame = deploy.pods_frame(conn, "qwen")
    assert sorted(frame["role"]) == ["both", "both", "scheduler"] and frame["ready"].all()
    assert frame.loc[frame["role"] == "both", "gpus"].tolist() == [1, 1]

    rid = df[df["mode"] == "llm-d"]["request_id"].iloc[-1]
    trace = doctor.route_trace(conn, "qwen", rid)
    assert trace is not None and trace["picked"]
    assert "→" in viz.explain_route_text(trace)

    assert doctor.run(conn, "qwen").ok
    assert deploy.delete(conn, "qwen", timeout_s=60)
    assert deploy.get(conn, "qwen") is None
