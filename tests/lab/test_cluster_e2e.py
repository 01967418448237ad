"""The lab as a cluster, end to end through the official ``kubernetes`` client: seed LLMInferenceServices
become Ready at a compressed time scale, answer at ``status.url`` through the gateway, and fail the way
RHOAI does (CrashLoopBackOff on OOM, FailedScheduling when GPUs run out). One lab process per module."""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from labhelpers import api_client, eventually, run_cli
from labseeds import STEP_08

GROUP, VERSION, PLURAL = "serving.kserve.io", "v1alpha1", "llminferenceservices"
NS = "private-ai"
TIME_SCALE = "50"

QWEN = yaml.safe_load("""
apiVersion: serving.kserve.io/v1alpha1
kind: LLMInferenceService
metadata:
  name: qwen
  namespace: private-ai
  annotations: {security.opendatahub.io/enable-auth: "false"}
spec:
  model: {uri: "hf://Qwen/Qwen3-0.6B", name: Qwen/Qwen3-0.6B}
  replicas: 1
  router: {gateway: {}, route: {}, scheduler: {}}
  template:
    tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
    containers:
      - name: main
        env: [{name: VLLM_ADDITIONAL_ARGS, value: "--disable-uvicorn-access-log --max-model-len=16000"}]
        resources:
          limits: {cpu: "1", memory: 8Gi, nvidia.com/gpu: "1"}
          requests: {cpu: "1", memory: 8Gi, nvidia.com/gpu: "1"}
""")


class Cluster:
    def __init__(self, home: Path, *, start: bool = False) -> None:
        self.home = home
        if start:
            self.up()  # connects once the kubeconfig exists
        else:
            self.connect()

    def connect(self) -> None:
        from kubernetes import client

        api = api_client(self.home / "kubeconfig")
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)

    def up(self) -> None:
        started = run_cli(self.home, "up", "--port", "0", "--time-scale", TIME_SCALE, timeout=120)
        if started.returncode != 0:
            pytest.fail(f"llmd-lab up failed:\n{started.stdout}\n{started.stderr}")
        self.connect()

    def down(self) -> None:
        run_cli(self.home, "down", timeout=120)

    # ---- helpers
    def apply(self, obj: dict) -> None:
        self.custom.create_namespaced_custom_object(GROUP, VERSION, obj["metadata"]["namespace"], PLURAL, obj)

    def get(self, name: str) -> dict:
        return self.custom.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, name)

    def wait(self, check: Callable[[], Any], timeout: float, what: str) -> Any:
        return eventually(check, timeout, what)

    def ready(self, name: str, timeout: float = 60) -> dict:
        def check() -> dict | None:
            obj = self.get(name)
            cond = next((c for c in (obj.get("status") or {}).get("conditions", []) if c["type"] == "Ready"), {})
            return obj if cond.get("status") == "True" else None

        return self.wait(check, timeout, f"{name} Ready")

    def delete_and_wait(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, name)

        def gone() -> bool:
            pods = self.core.list_namespaced_pod(NS, label_selector=f"app.kubernetes.io/name={name}").items
            deps = self.apps.list_namespaced_deployment(NS, label_selector=f"app.kubernetes.io/name={name}").items
            svcs = [s for s in self.core.list_namespaced_service(NS).items if s.metadata.name.startswith(name + "-")]
            return not pods and not deps and not svcs

        self.wait(gone, 30, f"{name} and its children to be gone")

    def chat(self, url: str, model: str) -> dict:
        r = httpx.post(f"{url}/v1/chat/completions", timeout=30, json={
            "model": model, "messages": [{"role": "user", "content": "Explain Kubernetes in 50 words."}],
            "max_tokens": 16})
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    home = tmp_path_factory.mktemp("llmd-lab-cluster")
    c = Cluster(home, start=True)
    try:
        yield c
    finally:
        c.down()


def test_step08_seed_is_ready_serves_and_matches_kserve(cluster: Cluster) -> None:
    cluster.apply(copy.deepcopy(STEP_08))
    obj = cluster.ready("mistral-3-distributed")
    gateway_port = json.loads((cluster.home / "lab.json").read_text())["gateway_port"]
    assert obj["status"]["url"] == f"http://127.0.0.1:{gateway_port}/private-ai/mistral-3-distributed"
    answer = cluster.chat(obj["status"]["url"], "mistral-3-distributed")
    assert answer["model"] == "mistral-3-distributed" and answer["choices"][0]["message"]["content"]
    dep = cluster.apps.read_namespaced_deployment("mistral-3-distributed-kserve", NS)
    assert dep.metadata.labels["app.kubernetes.io/component"] == "llminferenceservice-workload"
    assert dep.metadata.labels["llm-d.ai/role"] == "both"
    assert dep.metadata.owner_references[0].kind == "LLMInferenceService"
    cluster.apps.read_namespaced_deployment("mistral-3-distributed-kserve-router-scheduler", NS)
    cluster.core.read_namespaced_service("mistral-3-distributed-kserve-workload-svc", NS)
    cluster.core.read_namespaced_service("mistral-3-distributed-epp-service", NS)
    cluster.custom.get_namespaced_custom_object("inference.networking.x-k8s.io", "v1alpha2", NS, "inferencepools",
                                                "mistral-3-distributed-inference-pool")
    cluster.custom.get_namespaced_custom_object("gateway.networking.k8s.io", "v1", NS, "httproutes",
                                                "mistral-3-distributed-kserve-route")
    pods = cluster.core.list_namespaced_pod(NS, label_selector="app.kubernetes.io/name=mistral-3-distributed,"
                                            "kserve.io/component=workload").items
    assert len(pods) == 2 and len({p.spec.node_name for p in pods}) == 2
    assert all(p.status.pod_ip.startswith("127.1.") for p in pods)
    log = cluster.core.read_namespaced_pod_log(pods[0].metadata.name, NS, container="main")
    assert "Application startup complete" in log
    _pods_serve_only_https(cluster, pods[0].metadata.name)
    _epp_scrapes_the_https_pods(cluster, "mistral-3-distributed")
    cluster.delete_and_wait("mistral-3-distributed")


def _pods_serve_only_https(cluster: Cluster, pod: str) -> None:
    """KServe's vLLM serves TLS on 8000 (workload_tls_self_signed.go, the preset's --ssl-certfile): the API
    server's pod proxy reaches it with kube-apiserver's ``https:`` prefix and without verifying the SAN-less
    certificate; plain ``<pod>:8000`` gets no HTTP answer from it (uvicorn with TLS closes: EOF), a 503."""
    from kubernetes.client.exceptions import ApiException

    text = cluster.core.connect_get_namespaced_pod_proxy_with_path(f"https:{pod}:8000", NS, "metrics")
    assert "vllm:num_requests_running" in text
    with pytest.raises(ApiException) as plain:
        cluster.core.connect_get_namespaced_pod_proxy_with_path(f"{pod}:8000", NS, "metrics")
    assert plain.value.status == 503 and "error trying to reach service: EOF" in plain.value.body


def _epp_scrapes_the_https_pods(cluster: Cluster, name: str) -> None:
    """The EPP runs with KServe's ``--model-server-metrics-scheme https`` (skip-verify by default): its pool
    gauge exists only once a scrape of the HTTPS pods succeeded within the staleness threshold."""
    epp = cluster.core.list_namespaced_pod(NS, label_selector=f"app.kubernetes.io/name={name},"
                                           "app.kubernetes.io/component=llminferenceservice-router-scheduler").items
    assert epp, "no EPP pod"

    def pool_gauge() -> bool:
        text = cluster.core.connect_get_namespaced_pod_proxy_with_path(f"{epp[0].metadata.name}:9090", NS, "metrics")
        return "inference_pool_average_kv_cache_utilization{" in text

    cluster.wait(pool_gauge, 30, "the EPP's pool gauge from HTTPS scrapes")
    log = cluster.core.read_namespaced_pod_log(epp[0].metadata.name, NS)
    assert "scraping over http" not in log


def test_70b_on_one_l4_crash_loops_with_oom_in_the_log(cluster: Cluster) -> None:
    big = copy.deepcopy(QWEN)
    big["metadata"]["name"] = "llama-70b"
    big["spec"]["model"] = {"uri": "hf://meta-llama/Llama-3.1-70B-Instruct", "name": "meta-llama/Llama-3.1-70B-Instruct"}
    big["spec"]["template"]["nodeSelector"] = {"node.kubernetes.io/instance-type": "g6.4xlarge"}
    # a gated repository: the storage-initializer needs HF_TOKEN from the Secret KServe attaches
    cluster.core.create_namespaced_secret(NS, {"metadata": {"name": "hf-token"}, "stringData": {"HF_TOKEN": "hf_test"}})
    big["metadata"].setdefault("annotations", {})["serving.kserve.io/storageSecretName"] = "hf-token"
    cluster.apply(big)

    def crash_looping() -> Any:
        for pod in cluster.core.list_namespaced_pod(NS, label_selector="app.kubernetes.io/name=llama-70b,"
                                                    "kserve.io/component=workload").items:
            for cs in pod.status.container_statuses or []:
                if cs.name == "main" and cs.state.waiting and cs.state.waiting.reason == "CrashLoopBackOff":
                    return pod
        return None

    pod = cluster.wait(crash_looping, 90, "CrashLoopBackOff")  # after 141 GB at the profile's bandwidth
    previous = cluster.core.read_namespaced_pod_log(pod.metadata.name, NS, container="main", previous=True)
    assert "out of memory" in previous.lower()
    obj = cluster.get("llama-70b")
    ready = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"
    cluster.delete_and_wait("llama-70b")
    cluster.core.delete_namespaced_secret("hf-token", NS)


def test_five_replicas_leave_the_extra_pending_with_failed_scheduling(cluster: Cluster) -> None:
    five = copy.deepcopy(STEP_08)
    del five["metadata"]["labels"]
    five["spec"]["replicas"] = 5
    cluster.apply(five)

    def pending() -> Any:
        pods = cluster.core.list_namespaced_pod(NS, label_selector="app.kubernetes.io/name=mistral-3-distributed,"
                                                "kserve.io/component=workload").items
        waiting = [p for p in pods if not p.spec.node_name]
        return waiting if len(pods) == 5 and len(waiting) == 1 else None

    waiting = cluster.wait(pending, 30, "one Pending pod")[0]

    def failed_scheduling() -> Any:
        events = cluster.core.list_namespaced_event(NS, field_selector=f"involvedObject.name={waiting.metadata.name}")
        return [e for e in events.items if e.reason == "FailedScheduling"]

    event = cluster.wait(failed_scheduling, 10, "a FailedScheduling event")[0]
    assert event.type == "Warning"
    assert event.message.startswith("0/10 nodes are available: ") and "Insufficient nvidia.com/gpu" in event.message
    cluster.delete_and_wait("mistral-3-distributed")


@pytest.mark.slow
@pytest.mark.parametrize("replicas", [1, 3, 4])
def test_replica_variants_become_ready(cluster: Cluster, replicas: int) -> None:
    obj = copy.deepcopy(STEP_08)
    del obj["metadata"]["labels"]
    obj["spec"]["replicas"] = replicas
    cluster.apply(obj)
    ready = cluster.ready("mistral-3-distributed")
    cluster.chat(ready["status"]["url"], "mistral-3-distributed")
    # Ready follows the Deployment's Available (ready ≥ replicas − maxUnavailable 25 %), so the last replica
    # of 4 may still be starting; it gets there
    cluster.wait(lambda: cluster.apps.read_namespaced_deployment("mistral-3-distributed-kserve", NS).status
                 .ready_replicas == replicas, 30, f"{replicas} ready replicas")
    cluster.delete_and_wait("mistral-3-distributed")


@pytest.mark.slow
def test_tensor_two_in_one_pod_lands_on_the_4_gpu_node(cluster: Cluster) -> None:
    obj = copy.deepcopy(QWEN)
    obj["spec"]["parallelism"] = {"tensor": 2}
    main = obj["spec"]["template"]["containers"][0]
    main["env"][0]["value"] += " --tensor-parallel-size=2"
    main["resources"] = {"limits": {"nvidia.com/gpu": "2"}, "requests": {"nvidia.com/gpu": "2"}}
    cluster.apply(obj)
    ready = cluster.ready("qwen")
    cluster.chat(ready["status"]["url"], "Qwen/Qwen3-0.6B")
    pod = cluster.core.list_namespaced_pod(NS, label_selector="app.kubernetes.io/name=qwen,"
                                           "kserve.io/component=workload").items[0]
    node = cluster.core.read_node(pod.spec.node_name)
    assert node.metadata.labels["node.kubernetes.io/instance-type"] == "g6.12xlarge"
    assert not cluster.custom.list_namespaced_custom_object("leaderworkerset.x-k8s.io", "v1", NS,
                                                            "leaderworkersets")["items"]
    cluster.delete_and_wait("qwen")


@pytest.mark.slow
def test_worker_spec_makes_a_leader_worker_set(cluster: Cluster) -> None:
    """A data-parallel worker (kserve-config-llm-worker-data-parallel, a preset RHOAI 3.0 ships) becomes a
    LeaderWorkerSet; pipeline parallelism has no preset there (see test_llmisvc_controller)."""
    obj = copy.deepcopy(QWEN)
    obj["spec"]["replicas"] = 1
    obj["spec"]["parallelism"] = {"tensor": 1, "data": 2, "dataLocal": 1}
    obj["spec"]["worker"] = {
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "containers": [{"name": "main", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}
    cluster.apply(obj)
    ready = cluster.ready("qwen")
    cluster.chat(ready["status"]["url"], "Qwen/Qwen3-0.6B")
    lws = cluster.custom.get_namespaced_custom_object("leaderworkerset.x-k8s.io", "v1", NS, "leaderworkersets",
                                                      "qwen-kserve-mn")
    assert lws["spec"]["leaderWorkerTemplate"]["size"] == 2
    names = sorted(p.metadata.name for p in cluster.core.list_namespaced_pod(
        NS, label_selector="leaderworkerset.sigs.k8s.io/name=qwen-kserve-mn").items)
    assert names == ["qwen-kserve-mn-0", "qwen-kserve-mn-0-1"]
    cluster.delete_and_wait("qwen")


@pytest.mark.slow
def test_prefill_decode_seed_becomes_ready(cluster: Cluster) -> None:
    pd = yaml.safe_load("""
    apiVersion: serving.kserve.io/v1alpha1
    kind: LLMInferenceService
    metadata: {name: my-model-pd, namespace: private-ai, annotations: {security.opendatahub.io/enable-auth: "false"}}
    spec:
      replicas: 1
      model: {uri: "oci://quay.io/redhat-ai-services/modelcar-catalog:llama-3-1-8b", name: meta-llama/Llama-3.1-8B-Instruct}
      router: {gateway: {}, route: {}, scheduler: {}}
      template:
        containers:
          - name: main
            env: [{name: VLLM_ADDITIONAL_ARGS, value: "--disable-uvicorn-access-log --max-model-len=8192"}]
            resources: {limits: {nvidia.com/gpu: '1'}, requests: {nvidia.com/gpu: '1'}}
        tolerations: [{effect: NoSchedule, key: nvidia.com/gpu, operator: Exists}]
      prefill:
        replicas: 1
        template:
          containers:
            - name: main
              env: [{name: VLLM_ADDITIONAL_ARGS, value: "--disable-uvicorn-access-log --max-model-len=8192"}]
              resources: {limits: {nvidia.com/gpu: '1'}, requests: {nvidia.com/gpu: '1'}}
          tolerations: [{effect: NoSchedule, key: nvidia.com/gpu, operator: Exists}]
    """)
    cluster.apply(pd)
    ready = cluster.ready("my-model-pd")
    answer = cluster.chat(ready["status"]["url"], "meta-llama/Llama-3.1-8B-Instruct")
    assert answer["choices"][0]["message"]["content"]
    # a streamed request asking for usage, as the notebooks' traffic client sends it, takes the prefill hop too
    streamed = httpx.post(f"{ready['status']['url']}/v1/chat/completions", timeout=30, json={
        "model": "meta-llama/Llama-3.1-8B-Instruct", "messages": [{"role": "user", "content": "Stream it."}],
        "max_tokens": 8, "stream": True, "stream_options": {"include_usage": True}})
    assert streamed.status_code == 200 and streamed.text.rstrip().endswith("data: [DONE]")
    pods = {p.metadata.labels["llm-d.ai/role"]: p for p in cluster.core.list_namespaced_pod(
        NS, label_selector="app.kubernetes.io/name=my-model-pd,kserve.io/component=workload").items}
    assert sorted(pods) == ["decode", "prefill"]
    # the EPP's P/D profile sent the prompt to the prefill pod first (through the decode pod's routing sidecar)
    metrics = httpx.get(f"https://{pods['prefill'].status.pod_ip}:8000/metrics", verify=False).text
    served = [line for line in metrics.splitlines() if line.startswith("vllm:request_success_total")]
    assert served and sum(float(line.rsplit(" ", 1)[1]) for line in served) >= 2
    cluster.delete_and_wait("my-model-pd")


@pytest.mark.slow
def test_down_up_keeps_the_deployment_and_it_serves_again(cluster: Cluster) -> None:
    cluster.apply(copy.deepcopy(QWEN))
    url = cluster.ready("qwen")["status"]["url"]
    cluster.down()
    cluster.up()
    obj = cluster.ready("qwen")
    assert obj["status"]["url"] == url
    cluster.wait(lambda: _serves(url), 60, "qwen to answer after up")
    cluster.delete_and_wait("qwen")


def _serves(url: str) -> bool:
    try:
        r = httpx.post(f"{url}/v1/chat/completions", timeout=10, json={
            "model": "Qwen/Qwen3-0.6B", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4})
    except httpx.HTTPError:
        return False
    return r.status_code == 200


@pytest.mark.slow
def test_prometheus_scrapes_every_vllm_series_from_the_generated_config(cluster: Cluster, tmp_path: Path) -> None:
    import re
    import shutil
    import socket

    prometheus = shutil.which("prometheus")
    if prometheus is None:
        pytest.skip("Debian's prometheus is not installed (apt-get install prometheus); CI installs it")
    from llmd_lab.lab.controller.monitoring import scrape_config_from_cluster

    cluster.apply(copy.deepcopy(QWEN))
    url = cluster.ready("qwen")["status"]["url"]
    for _ in range(3):
        cluster.chat(url, "Qwen/Qwen3-0.6B")
    config = scrape_config_from_cluster(str(cluster.home / "kubeconfig"), interval="1s")
    vllm_targets = config["scrape_configs"][0]["static_configs"]
    assert len(vllm_targets) == 1 and config["scrape_configs"][1]["static_configs"]
    target = vllm_targets[0]["targets"][0]
    exposed = set(re.findall(r"^# TYPE (vllm:\S+) (\w+)", httpx.get(f"https://{target}/metrics", verify=False).text, re.M))
    expected = set()
    for name, kind in exposed:
        expected |= {f"kserve_{name}_bucket"} if kind == "histogram" else (
            {f"kserve_{name}_total"} if kind == "counter" and not name.endswith("_total") else {f"kserve_{name}"})
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    proc = subprocess.Popen([prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}",
                             "--log.level=warn"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def names() -> set[str] | None:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/v1/label/__name__/values", timeout=5)
            except httpx.HTTPError:
                return None
            got = set(r.json().get("data") or []) if r.status_code == 200 else set()
            return got if expected <= got else None

        cluster.wait(names, 60, "every vLLM series in Prometheus")

        def epp_up() -> bool:
            r = httpx.get(f"http://127.0.0.1:{port}/api/v1/query", params={"query": 'up{job="kserve-llm-isvc-scheduler"}'})
            result = r.json()["data"]["result"]
            return bool(result) and result[0]["value"][1] == "1"

        cluster.wait(epp_up, 30, "the EPP metrics target to be up")
        r = httpx.get(f"http://127.0.0.1:{port}/api/v1/query", params={"query": "kserve_vllm:num_requests_running"})
        labels = r.json()["data"]["result"][0]["metric"]
        assert labels["llm_isvc_name"] == "qwen" and labels["llm_isvc_role"] == "both"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        cluster.delete_and_wait("qwen")


def test_auth_enabled_route_needs_a_bearer_token(cluster: Cluster) -> None:
    obj = copy.deepcopy(QWEN)
    del obj["metadata"]["annotations"]  # RHOAI 3.0 default: enable-auth true, and RHCL is installed
    cluster.apply(obj)
    url = cluster.ready("qwen")["status"]["url"]
    body = {"model": "Qwen/Qwen3-0.6B", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    denied = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30)
    assert denied.status_code == 401 and "bearer token" in denied.text
    token = (cluster.home / "token").read_text().strip()
    allowed = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30,
                         headers={"Authorization": f"Bearer {token}"})
    assert allowed.status_code == 200, allowed.text
    cluster.delete_and_wait("qwen")
