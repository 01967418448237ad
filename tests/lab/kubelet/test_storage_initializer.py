"""The storage-initializer as on a cluster: a gated hf:// repository without HF_TOKEN fails with
huggingface_hub's GatedRepoError (Init:Error, then Init:CrashLoopBackOff); with the token from the Secret KServe
attaches it downloads, taking the weights' size over the profile's bandwidth.

Upstream: red-hat-data-services/kserve@rhoai-3.0 python/storage-initializer/scripts/initializer-entrypoint,
python/kserve/kserve/storage/storage.py (``download``, ``_download_hf``), python/kserve/kserve/logging.py;
huggingface_hub 0.36 (python/kserve/poetry.lock) utils/_http.py ``hf_raise_for_status`` (GatedRepo).
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from llmd_lab.kserve import hf
from llmd_lab.lab.controller.testing import eventually
from llmd_lab.lab.kubelet import programs
from llmd_lab.sim import storage_initializer
from llmd_lab.sim.vllm.profiles import resolve_model

pytestmark = pytest.mark.anyio


@pytest.fixture
async def node_env(start_lab):
    return await start_lab()


def model_pod(name: str, uri: str, *, token_secret: str | None = None) -> dict:
    """A pod as KServe renders it for an hf:// model (children.attach_model + _attach_credentials)."""
    init: dict = {"name": "storage-initializer",
                  "image": "registry.redhat.io/rhoai/odh-kserve-storage-initializer-rhel9:v3.0",
                  "args": [uri, "/mnt/models"]}
    if token_secret:
        init["env"] = [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": token_secret, "key": "HF_TOKEN"}}}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"initContainers": [init], "containers": [{"name": "main", "image": "registry.example/idle:1"}]}}


def test_gated_list_is_data_and_the_notebook_defaults_are_not_gated() -> None:
    assert hf.is_gated("hf://meta-llama/Llama-3.1-8B-Instruct") and hf.is_gated("META-LLAMA/Llama-3.1-70B-Instruct")
    assert hf.is_gated("google/gemma-2-2b-it")
    for default in ("Qwen/Qwen3-0.6B", "hf://Qwen/Qwen2.5-0.5B-Instruct", "RedHatAI/Meta-Llama-3.1-8B-Instruct-FP8"):
        assert not hf.is_gated(default)
    notebooks = Path(__file__).parents[3] / "notebooks"
    for source in sorted(notebooks.glob("[0-9][0-9]-*.py")):
        for line in source.read_text().splitlines():
            if line.startswith(("model = ", "dp_model = ")):
                assert not hf.is_gated(line.split('"')[1]), f"{source.name}: {line}"


def test_storage_initializer_is_its_own_program_and_gets_the_bandwidth() -> None:
    init = model_pod("p", "hf://Qwen/Qwen3-0.6B")["spec"]["initContainers"][0]
    assert programs.program_for(init, init["args"], init=True) == programs.STORAGE_INITIALIZER
    env = programs.container_env({"metadata": {}, "spec": {}}, {**init, "env": [
        {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "HF_TOKEN"}}}]},
        pod_ip="127.1.0.2", node=None, time_scale=10, secrets={("hf", "HF_TOKEN"): "hf_x"}, download_mbps=150)
    assert env[storage_initializer.DOWNLOAD_MBPS_ENV] == "150.0" and env["HF_TOKEN"] == "hf_x"


def test_download_takes_the_weights_over_the_bandwidth() -> None:
    llama = resolve_model("meta-llama/Llama-3.1-8B-Instruct").weight_bytes
    assert storage_initializer.download_seconds("hf://meta-llama/Llama-3.1-8B-Instruct", 150) == llama / 150e6
    assert 100 < llama / 150e6 < 110  # 16 GB at 150 MB/s: about 107 s on a cluster
    assert storage_initializer.download_seconds("hf://Qwen/Qwen3-0.6B", 0) == 0.0


async def test_malformed_hf_uri_fails_with_kserves_value_error() -> None:
    lines: list[str] = []
    with pytest.raises(storage_initializer.InitializerExitError) as err:
        await storage_initializer.run(["hf://Qwen/Qwen3-0.6B/extra", "/mnt/models"], {}, lines.append)
    assert err.value.code == 1
    assert lines[-1] == "ValueError: URI must contain exactly one '/' separating the repo and model name"


async def test_gated_model_without_token_goes_init_crash_loop_with_gated_repo_error(node_env) -> None:
    ctx, kubelet = node_env
    await ctx.store.create(model_pod("llama", "hf://meta-llama/Llama-3.1-8B-Instruct"))

    async def crash_looping():
        pod = await ctx.store.get("v1", "Pod", "llama", "default")
        for cs in (pod.get("status") or {}).get("initContainerStatuses") or []:
            if (cs["state"].get("waiting") or {}).get("reason") == "CrashLoopBackOff" and cs["restartCount"] >= 1:
                return pod
        return None

    pod = await eventually(crash_looping, timeout=120, what="Init:CrashLoopBackOff")
    cs = pod["status"]["initContainerStatuses"][0]
    assert cs["lastState"]["terminated"]["reason"] == "Error" and cs["lastState"]["terminated"]["exitCode"] == 1
    assert pod["status"]["phase"] == "Pending"
    assert not pod["status"]["containerStatuses"][0]["started"]
    log = "".join([c async for c in kubelet.read_logs("default", "llama", "storage-initializer", None, False, True)])
    assert "kserve INFO [initializer-entrypoint:<module>():16] Initializing, args: src_uri " \
           "[hf://meta-llama/Llama-3.1-8B-Instruct] dest_path[ [/mnt/models]" in log
    assert "huggingface_hub.errors.GatedRepoError: 401 Client Error. (Request ID: Root=1-" in log
    assert "Cannot access gated repo for url https://huggingface.co/meta-llama/Llama-3.1-8B-Instruct/resolve/" in log
    assert ("Access to model meta-llama/Llama-3.1-8B-Instruct is restricted. You must have access to it and be "
            "authenticated to access it. Please log in.") in log
    assert "Successfully copied" not in log


async def test_gated_model_with_the_token_from_the_secret_downloads(node_env) -> None:
    ctx, kubelet = node_env
    await ctx.store.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hf", "namespace": "default"},
                            "data": {"HF_TOKEN": base64.b64encode(b"hf_secret").decode()}})
    await ctx.store.create(model_pod("llama", "hf://meta-llama/Llama-3.1-8B-Instruct", token_secret="hf"))

    async def initialized():
        pod = await ctx.store.get("v1", "Pod", "llama", "default")
        cs = ((pod.get("status") or {}).get("initContainerStatuses") or [{}])[0]
        return pod if (cs.get("state") or {}).get("terminated", {}).get("reason") == "Completed" else None

    pod = await eventually(initialized, timeout=120, what="storage-initializer Completed")
    assert pod["status"]["initContainerStatuses"][0]["restartCount"] == 0
    log = "".join([c async for c in kubelet.read_logs("default", "llama", "storage-initializer", None, False, False)])
    assert "Successfully copied hf://meta-llama/Llama-3.1-8B-Instruct to /mnt/models" in log
    seconds = float(log.split("Model downloaded in ")[1].split(" seconds")[0])
    # Timer granularity (uvloop rounds to a millisecond, times the lab's speed-up) may end the sleep a hair early.
    assert seconds >= 0.99 * storage_initializer.download_seconds("hf://meta-llama/Llama-3.1-8B-Instruct", 150)
    assert "hf_secret" not in log
