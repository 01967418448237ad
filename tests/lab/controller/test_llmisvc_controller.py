"""The LLMInferenceService reconciler over the store with the workload, endpoint, gateway and scheduler
controllers, on the rhoai-3.0 profile. A stand-in marks bound pods Ready (the kubelet is tested elsewhere)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from llmd_lab.lab.controller import controller_manager as controller_components
from llmd_lab.lab.controller.pods import is_ready
from llmd_lab.lab.controller.testing import events_for, eventually, make_ctx
from llmd_lab.lab.profiles import load_profile
from llmd_lab.lab.scheduler.scheduler import KubeScheduler
from llmd_lab.lab.server import LabPaths, install_profile

pytestmark = pytest.mark.anyio
API = "serving.kserve.io/v1alpha1"


async def fake_kubelet(store) -> None:
    """Bound pods become Running + Ready with a pod IP, like a kubelet whose programs start instantly."""
    n = 0
    while True:
        pods, _ = await store.list("v1", "Pod")
        for pod in pods:
            if pod["spec"].get("nodeName") and not is_ready(pod) and not pod["metadata"].get("deletionTimestamp"):
                n += 1
                pod["status"] = {"phase": "Running", "podIP": f"127.1.0.{n}",
                                 "conditions": [{"type": "Ready", "status": "True"}]}
                with contextlib.suppress(Exception):
                    await store.update_status(pod)
        await asyncio.sleep(0.05)


@pytest.fixture
async def lab(tmp_path: Path, step08):
    profile = load_profile("rhoai-3.0")
    ctx = make_ctx(tmp_path, profile)
    await install_profile(ctx.store, profile, LabPaths(tmp_path))
    parts = [*controller_components(ctx), KubeScheduler(interval=0.1)]
    for part in parts:
        if hasattr(part, "resync_seconds"):
            part.resync_seconds = 0.3
        await part.start(ctx)
    kubelet = asyncio.create_task(fake_kubelet(ctx.store))
    yield ctx
    kubelet.cancel()
    for part in reversed(parts):
        await part.stop()


async def ready_llmisvc(store, name: str, ns: str):
    svc = await store.get(API, "LLMInferenceService", name, ns)
    cond = next((c for c in (svc.get("status") or {}).get("conditions", []) if c["type"] == "Ready"), {})
    return svc if cond.get("status") == "True" else None


async def test_step08_becomes_ready_with_url(lab, step08) -> None:
    store = lab.store
    del step08["metadata"]["uid"]
    await store.create(step08)
    svc = await eventually(lambda: ready_llmisvc(store, "mistral-3-distributed", "private-ai"), timeout=15,
                           what="Ready=True")
    assert svc["status"]["url"] == "http://127.0.0.1/private-ai/mistral-3-distributed"
    assert svc["status"]["observedGeneration"] == 1
    types = {c["type"]: c["status"] for c in svc["status"]["conditions"]}
    for t in ("WorkloadsReady", "RouterReady", "MainWorkloadReady", "PresetsCombined", "InferencePoolReady",
              "HTTPRoutesReady", "GatewaysReady", "SchedulerWorkloadReady"):
        assert types[t] == "True", t
    pods, _ = await store.list("v1", "Pod", "private-ai", label_selector="app.kubernetes.io/name=mistral-3-distributed,"
                               "kserve.io/component=workload")
    assert len(pods) == 2 and len({p["spec"]["nodeName"] for p in pods}) == 2
    eps = await store.get("v1", "Endpoints", "mistral-3-distributed-kserve-workload-svc", "private-ai")
    assert len(eps["subsets"][0]["addresses"]) == 2

    # deleting the service removes every owned child
    await store.delete(API, "LLMInferenceService", "mistral-3-distributed", "private-ai")

    async def gone():
        left = []
        for api_version, kind in [("apps/v1", "Deployment"), ("apps/v1", "ReplicaSet"), ("v1", "Pod"),
                                  ("v1", "Service"), ("gateway.networking.k8s.io/v1", "HTTPRoute"),
                                  ("inference.networking.x-k8s.io/v1alpha2", "InferencePool")]:
            items, _ = await store.list(api_version, kind, "private-ai")
            left += [f"{kind}/{i['metadata']['name']}" for i in items
                     if i["metadata"]["name"].startswith("mistral-3-distributed")]
        return not left or None

    await eventually(gone, timeout=10, what="children garbage-collected")


async def test_auth_policy_missing_blocks_the_router_unless_auth_is_off(tmp_path: Path, step08) -> None:
    profile = load_profile("rhoai-3.0")
    profile.crds = [c for c in profile.crds if c != "authpolicies.kuadrant.io"]
    ctx = make_ctx(tmp_path, profile)
    await install_profile(ctx.store, profile, LabPaths(tmp_path))
    parts = controller_components(ctx)
    for part in parts:
        part.resync_seconds = 0.3
        await part.start(ctx)
    try:
        del step08["metadata"]["uid"]
        del step08["metadata"]["annotations"]
        await ctx.store.create(step08)

        async def router_blocked():
            svc = await ctx.store.get(API, "LLMInferenceService", "mistral-3-distributed", "private-ai")
            cond = next((c for c in (svc.get("status") or {}).get("conditions", []) if c["type"] == "RouterReady"), {})
            return cond if cond.get("status") == "False" and "AuthPolicy" in cond.get("message", "") else None

        cond = await eventually(router_blocked, what="RouterReady=False naming the AuthPolicy CRD")
        assert 'enable-auth: "false"' in cond["message"]
        await ctx.store.patch(API, "LLMInferenceService", "mistral-3-distributed", "private-ai",
                              {"metadata": {"annotations": {"security.opendatahub.io/enable-auth": "false"}}},
                              "application/merge-patch+json")

        async def route_exists():
            items, _ = await ctx.store.list("gateway.networking.k8s.io/v1", "HTTPRoute", "private-ai")
            return items

        await eventually(route_exists, what="HTTPRoute once auth is disabled")
    finally:
        for part in parts:
            await part.stop()


async def test_five_replicas_leave_one_pending_with_failed_scheduling(lab, step08) -> None:
    store = lab.store
    del step08["metadata"]["uid"]
    del step08["metadata"]["labels"]  # no Kueue queue: only the nodes limit
    step08["spec"]["replicas"] = 5
    await store.create(step08)

    async def pending():
        pods, _ = await store.list("v1", "Pod", "private-ai", label_selector="kserve.io/component=workload")
        waiting = [p for p in pods if not p["spec"].get("nodeName")]
        return waiting if len(pods) == 5 and len(waiting) == 1 and [
            c for c in waiting[0]["status"].get("conditions", []) if c["type"] == "PodScheduled"] else None

    waiting = await eventually(pending, timeout=15, what="one Pending pod")
    events = await events_for(store, waiting[0]["metadata"]["name"], "private-ai")
    failed = [e for e in events if e["reason"] == "FailedScheduling"]
    assert failed and failed[0]["type"] == "Warning"
    assert failed[0]["message"].startswith("0/10 nodes are available: ")
    assert "4 Insufficient nvidia.com/gpu" in failed[0]["message"]


async def test_kueue_quota_gates_the_third_replica(lab, step08) -> None:
    store = lab.store
    del step08["metadata"]["uid"]
    step08["spec"]["replicas"] = 3  # queue llmd → rhoai-llmd-queue has 2 GPUs
    await store.create(step08)

    async def gated():
        pods, _ = await store.list("v1", "Pod", "private-ai", label_selector="kserve.io/component=workload")
        conds = [c for p in pods for c in p["status"].get("conditions", []) if c.get("reason") == "SchedulingGated"]
        return conds if len(pods) == 3 and conds else None

    conds = await eventually(gated, timeout=15, what="a SchedulingGated pod")
    assert "insufficient unused quota for nvidia.com/gpu" in conds[0]["message"]
    assert "rhoai-llmd-queue" in conds[0]["message"]


async def test_spec_edits_roll_the_children(lab, step08) -> None:
    store = lab.store
    del step08["metadata"]["uid"]
    del step08["metadata"]["labels"]
    await store.create(step08)
    await eventually(lambda: ready_llmisvc(store, "mistral-3-distributed", "private-ai"), timeout=15, what="Ready")
    epp_before = await store.get("apps/v1", "Deployment", "mistral-3-distributed-kserve-router-scheduler",
                                 "private-ai")
    patch = {"spec": {"replicas": 3, "router": {"scheduler": {"template": {"containers": [{
        "name": "main", "args": ["--pool-name", "mistral-3-distributed-inference-pool", "--pool-namespace",
                                 "private-ai", "--config-text", "kind: EndpointPickerConfig\n"]}]}}}}}
    await store.patch(API, "LLMInferenceService", "mistral-3-distributed", "private-ai", patch,
                      "application/merge-patch+json")

    async def rolled():
        dep = await store.get("apps/v1", "Deployment", "mistral-3-distributed-kserve", "private-ai")
        epp = await store.get("apps/v1", "Deployment", "mistral-3-distributed-kserve-router-scheduler", "private-ai")
        svc = await store.get(API, "LLMInferenceService", "mistral-3-distributed", "private-ai")
        args = epp["spec"]["template"]["spec"]["containers"][0]["args"]
        return (dep["spec"]["replicas"] == 3 and args[-1] == "kind: EndpointPickerConfig\n"
                and svc["status"].get("observedGeneration") == 2) and epp

    epp = await eventually(rolled, timeout=10, what="replicas and EPP config rolled out")
    assert epp["metadata"]["generation"] > epp_before["metadata"]["generation"]

    async def new_replica_set():
        rss, _ = await store.list("apps/v1", "ReplicaSet", "private-ai",
                                  label_selector="app.kubernetes.io/component=llminferenceservice-router-scheduler")
        return len(rss) == 2 or None

    await eventually(new_replica_set, what="a second EPP ReplicaSet")


async def test_pipeline_parallel_layout_gets_combine_base_error_and_no_children(lab) -> None:
    """A worker with ``parallelism.pipeline`` asks for kserve-config-llm-worker-pipeline-parallel, which RHOAI 3.0 does not ship:
    red-hat-data-services/kserve@rhoai-3.0 config_merge.go getConfig fails, controller.go marks
    PresetsCombined=False/CombineBaseError, records a Warning event and reconciles no children."""
    from llmd_lab import manifests

    store = lab.store
    svc = manifests.with_namespace(manifests.llm_inference_service(
        "pp", "hf://Qwen/Qwen3-0.6B", nodes=2, annotations={"security.opendatahub.io/enable-auth": "false"}),
        "private-ai")
    svc["spec"]["parallelism"] = {"pipeline": 2}  # the layout the builder no longer writes (it picks data-parallel)
    await store.create(svc)

    async def presets_failed():
        got = await store.get(API, "LLMInferenceService", "pp", "private-ai")
        conds = {c["type"]: c for c in (got.get("status") or {}).get("conditions", [])}
        return conds if conds.get("PresetsCombined", {}).get("status") == "False" else None

    conds = await eventually(presets_failed, timeout=15, what="PresetsCombined=False")
    name = "kserve-config-llm-worker-pipeline-parallel"
    assert conds["PresetsCombined"]["reason"] == "CombineBaseError"
    assert conds["PresetsCombined"]["message"] == (
        f'failed to get LLMInferenceServiceConfig "{name}" from namespaces ["private-ai", "kserve"]: '
        f'llminferenceserviceconfigs.serving.kserve.io "{name}" not found')
    assert conds["Ready"]["status"] == "Unknown"
    for api_version, kind in (("apps/v1", "Deployment"), ("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet"),
                              ("v1", "Service"), ("v1", "Secret")):
        items, _ = await store.list(api_version, kind, "private-ai", label_selector="app.kubernetes.io/name=pp")
        assert items == [], kind
    events = await events_for(store, "pp", "private-ai")
    assert any(e["reason"] == "Error" and "failed to combine base-configurations" in e["message"] for e in events)


async def test_self_signed_workload_certificate_has_no_sans_and_is_kept(lab, step08) -> None:
    """workload_tls_self_signed.go: RSA-4096, O=Kserve Self Signed, no CN/SANs, 10 years, serverAuth; created once."""
    import base64
    import datetime

    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    store = lab.store
    del step08["metadata"]["uid"]
    await store.create(step08)
    name = "mistral-3-distributed-kserve-self-signed-certs"

    async def secret():
        try:
            return await store.get("v1", "Secret", name, "private-ai")
        except Exception:
            return None

    first = await eventually(secret, timeout=15, what="the self-signed certificate Secret")
    assert first["type"] == "kubernetes.io/tls"
    assert first["metadata"]["labels"]["app.kubernetes.io/component"] == "llminferenceservice-workload"
    cert = x509.load_pem_x509_certificate(base64.b64decode(first["data"]["tls.crt"]))
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Kserve Self Signed"
    assert not cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME) and cert.issuer == cert.subject
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert cert.public_key().key_size == 4096
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == datetime.timedelta(days=3650)
    assert ExtendedKeyUsageOID.SERVER_AUTH in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    expires = datetime.datetime.fromisoformat(first["metadata"]["annotations"]["certificates.kserve.io/expiration"])
    assert datetime.timedelta(days=365 * 8 - 1) < expires - cert.not_valid_before_utc < datetime.timedelta(days=365 * 8 + 1)
    await eventually(lambda: ready_llmisvc(store, "mistral-3-distributed", "private-ai"), timeout=15, what="Ready")
    again = await store.get("v1", "Secret", name, "private-ai")
    assert again["data"] == first["data"]  # not regenerated on later reconciles


async def test_hf_token_reaches_the_storage_initializer_as_kserve_reads_it(lab, step08) -> None:
    """workload_storage.go attachHfModelArtifact + credentials/service_account_credentials.go: the Secret the
    serving.kserve.io/storageSecretName annotation names, else those the ServiceAccount lists; HF_TOKEN key only."""
    store = lab.store
    ns = "private-ai"
    await store.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hf", "namespace": ns},
                        "data": {"HF_TOKEN": "aGZfeHh4"}})
    await store.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "other", "namespace": ns},
                        "data": {"token": "eA=="}})
    await store.create({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "models", "namespace": ns},
                        "secrets": [{"name": "other"}, {"name": "hf"}]})
    del step08["metadata"]["uid"]
    step08["spec"]["model"] = {"uri": "hf://meta-llama/Llama-3.1-8B-Instruct", "name": "llama"}
    step08["spec"]["template"]["serviceAccountName"] = "models"
    plain = {**step08, "metadata": {**step08["metadata"], "name": "plain"},
             "spec": {**step08["spec"], "template": {k: v for k, v in step08["spec"]["template"].items()
                                                    if k != "serviceAccountName"}}}
    annotated = {**plain, "metadata": {**plain["metadata"], "name": "annotated",
                                       "annotations": {**plain["metadata"].get("annotations", {}),
                                                       "serving.kserve.io/storageSecretName": "hf"}}}
    for obj in (step08, plain, annotated):
        await store.create(obj)

    async def init_env(name: str):
        try:
            dep = await store.get("apps/v1", "Deployment", f"{name}-kserve", ns)
        except Exception:
            return None
        init = next(c for c in dep["spec"]["template"]["spec"]["initContainers"] if c["name"] == "storage-initializer")
        return init.get("env", [])

    token = {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "HF_TOKEN"}}}
    assert await eventually(lambda: init_env("mistral-3-distributed"), timeout=15, what="workload") == [token]
    assert await eventually(lambda: init_env("annotated"), timeout=15, what="workload") == [token]
    dep = await eventually(lambda: _deployment(store, "plain-kserve", ns), timeout=15, what="workload")
    init = next(c for c in dep["spec"]["template"]["spec"]["initContainers"] if c["name"] == "storage-initializer")
    assert not init.get("env")  # the default ServiceAccount lists no Secret: no token, the gated download fails


async def _deployment(store, name: str, ns: str):
    try:
        return await store.get("apps/v1", "Deployment", name, ns)
    except Exception:
        return None
