"""Golden tests for the pod lifecycle stages (KWOK-style): each ``testdata/*.input.yaml`` names a stage and
its fields; the rendered container state/pod status/events must equal ``*.output.yaml``.
Regenerate after an intended change with ``LLMD_LAB_UPDATE_GOLDEN=1 pytest tests/lab/kubelet``."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
import yaml

from llmd_lab.lab.kubelet import programs, stages
from llmd_lab.lab.kubelet.probes import ProbeTiming

TESTDATA = Path(__file__).parent / "testdata"
CASES = sorted(TESTDATA.glob("*.input.yaml"))


@pytest.mark.parametrize("case", CASES, ids=[c.name.removesuffix(".input.yaml") for c in CASES])
def test_stage_golden(case: Path) -> None:
    spec = yaml.safe_load(case.read_text())
    rendered = dataclasses.asdict(stages.render(spec["stage"], spec["fields"]))
    golden = case.with_name(case.name.replace(".input.", ".output."))
    if os.environ.get("LLMD_LAB_UPDATE_GOLDEN") == "1":
        golden.write_text(yaml.safe_dump(rendered, sort_keys=False))
    assert rendered == yaml.safe_load(golden.read_text())


def test_every_stage_has_a_golden_case() -> None:
    covered = {yaml.safe_load(c.read_text())["stage"] for c in CASES}
    assert covered == set(stages.stage_names())


def test_backoff_doubles_to_five_minutes() -> None:
    assert [stages.backoff_seconds(n) for n in (1, 2, 3, 6, 9)] == [10, 20, 40, 300, 300]
    assert stages.format_duration(10) == "10s" and stages.format_duration(300) == "5m0s"


def test_unknown_stage_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="crash-loop-back-off"):
        stages.render("nope", {})


def test_shell_wrapped_vllm_command_is_expanded() -> None:
    container = {"name": "main", "command": ["/bin/bash", "-c"],
                 "args": ['vllm serve /mnt/models --served-model-name "m x" --port 8000 ${VLLM_ADDITIONAL_ARGS} '
                          "--data-parallel-address $(LWS_LEADER_ADDRESS)"]}
    env = {"VLLM_ADDITIONAL_ARGS": "--max-model-len=8192 --tensor-parallel-size=2", "LWS_LEADER_ADDRESS": "l.s.ns"}
    argv = programs.container_argv(container, env)
    assert argv == ["vllm", "serve", "/mnt/models", "--served-model-name", "m x", "--port", "8000",
                    "--max-model-len=8192", "--tensor-parallel-size=2", "--data-parallel-address", "l.s.ns"]
    assert programs.program_for(container, argv) == programs.VLLM
    assert programs.container_port(container, argv) == 8000
    epp = {"name": "main", "args": ["--pool-name", "p", "--grpc-port", "9002"]}
    assert programs.program_for(epp, programs.container_argv(epp, {})) == programs.EPP
    sidecar = {"name": "llm-d-routing-sidecar", "args": ["--port=8000", "--vllm-port=8001"], "restartPolicy": "Always"}
    assert programs.program_for(sidecar, sidecar["args"], init=True) == programs.ROUTING_SIDECAR
    assert programs.program_for({"name": "storage-initializer"}, ["hf://x", "/mnt/models"], init=True) == programs.STORAGE_INITIALIZER
    assert programs.program_for({"name": "modelcar-init"}, ["sh"], init=True) == programs.INIT


def test_env_gives_the_simulator_its_gpu_and_model() -> None:
    pod = {"metadata": {"name": "p", "namespace": "ns"},
           "spec": {"nodeName": "n", "initContainers": [{"name": "storage-initializer", "args": ["hf://Qwen/Qwen3-0.6B",
                                                                                                 "/mnt/models"]}]}}
    container = {"name": "main", "resources": {"limits": {"nvidia.com/gpu": "2"}},
                 "env": [{"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                         {"name": "A", "value": "$(POD_NAME)-x"}]}
    node = {"metadata": {"labels": {"nvidia.com/gpu.product": "NVIDIA-L4"}}}
    env = programs.container_env(pod, container, pod_ip="127.1.2.3", node=node, time_scale=20)
    assert env["LLMD_LAB_GPU_PRODUCT"] == "NVIDIA-L4" and env["LLMD_LAB_GPU_COUNT"] == "2"
    assert env["LLMD_LAB_MODEL_URI"] == "hf://Qwen/Qwen3-0.6B" and env["LLMD_LAB_TIME_SCALE"] == "20.0"
    assert env["IP"] == "127.1.2.3" and env["A"] == "p-x"


def test_probe_timing_takes_the_api_defaults_and_the_pods_values() -> None:
    """Readiness and liveness read their timing one way: ``core/v1`` Probe defaults where the pod is silent."""
    assert ProbeTiming.of({"httpGet": {"path": "/health"}}) == ProbeTiming(0.0, 10.0, 3)
    assert ProbeTiming.of({"initialDelaySeconds": 200, "periodSeconds": 30, "failureThreshold": 5}) == ProbeTiming(
        200.0, 30.0, 5)
