"""An in-process mini cluster: simulated vLLM pods + EPP + kube-proxy Service + gateway, on loopback.

Used by the gateway/EPP integration tests and ``llmd-lab bench gateway``. Each vLLM replica (the
simulated OpenAI app over the step engine) listens on its own loopback "pod IP" at 8000, the EPP is
started with the arguments KServe passes, a kube-proxy-style listener serves the workload Service,
and the gateway routes the managed HTTPRoute (reference §5.2) — all fed by one StaticSource.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field

from llmd_lab.sim.epp.configs import COURSE_CONFIG
from llmd_lab.sim.epp.server import EppHandle
from llmd_lab.sim.epp.server import serve as serve_epp
from llmd_lab.sim.gateway.kubeproxy import ServiceProxy
from llmd_lab.sim.gateway.server import Gateway
from llmd_lab.sim.http import RunningServer, start_server
from llmd_lab.sim.source import StaticSource
from llmd_lab.sim.tls import self_signed_pem, ssl_context_from_pem
from llmd_lab.sim.vllm.async_engine import AsyncLLM, RealClock
from llmd_lab.sim.vllm.engine import EngineConfig, LLMEngine
from llmd_lab.sim.vllm.profiles import resolve_gpu, resolve_model
from llmd_lab.sim.vllm.serving import create_app

QWEN = "Qwen/Qwen3-0.6B"
NS, NAME = "demo", "qwen"
POOL = f"{NAME}-inference-pool"
SELECTOR = {"app.kubernetes.io/part-of": "llminferenceservice", "app.kubernetes.io/name": NAME,
            "kserve.io/component": "workload"}


def pod(name: str, ip: str, ready: bool = True) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NS, "labels": {**SELECTOR, "llm-d.ai/role": "both"}},
            "spec": {"containers": [{"name": "main", "ports": [{"name": "https", "containerPort": 8000}]}]},
            "status": {"podIP": ip, "phase": "Running",
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


@dataclass
class VllmPod:
    name: str
    ip: str
    engine: LLMEngine
    llm: AsyncLLM
    server: RunningServer

    async def stop(self) -> None:
        await self.server.stop()
        await self.llm.shutdown()


@dataclass
class MiniCluster:
    source: StaticSource
    base: str
    pods: list[VllmPod] = field(default_factory=list)
    epp: EppHandle | None = None
    gateway: Gateway | None = None
    proxy: ServiceProxy | None = None
    epp_logs: list[str] = field(default_factory=list)

    @property
    def epp_ip(self) -> str:
        return f"{self.base}.200"

    @property
    def svc_ip(self) -> str:
        return f"{self.base}.201"

    def url(self, suffix: str) -> str:
        assert self.gateway is not None
        return f"{self.gateway.url}/{NS}/{NAME}{suffix}"

    async def stop(self) -> None:
        for part in (self.gateway, self.proxy, self.epp):
            if part is not None:
                await part.stop()
        for p in self.pods:
            await p.stop()

    async def wait_for(self, predicate, timeout: float = 10.0, what: str = "condition") -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            if loop.time() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.01)


async def start_cluster(*, replicas: int = 3, config: str = COURSE_CONFIG, time_scale: float = 100000.0,
                        failure_mode: str = "FailOpen", max_num_seqs: int | None = None,
                        epp_args: list[str] | None = None, seed: int = 7,
                        refresh_metrics_interval: str = "20ms") -> MiniCluster:
    """Start the mini cluster. Tests scrape every 20 ms to see load quickly; KServe leaves the EPP at its
    50 ms default (``refresh_metrics_interval="50ms"``), which is what a benchmark of the lab should use."""
    rng = random.Random()
    base = f"127.{rng.randrange(100, 200)}.{rng.randrange(0, 256)}"
    cluster = MiniCluster(StaticSource(), base)
    tls = ssl_context_from_pem(*self_signed_pem())  # vLLM serves HTTPS with KServe's self-signed certificate
    src = cluster.source
    for i in range(replicas):
        ip = f"{base}.{10 + i}"
        engine = LLMEngine(EngineConfig(resolve_model(QWEN), resolve_gpu("L4"), python_hash_seed="42",
                                        max_num_seqs=max_num_seqs))
        llm = AsyncLLM(engine, RealClock(time_scale))
        name = f"{NAME}-kserve-{i}"
        app = create_app(llm, [QWEN])
        server = await start_server(app, ip, 8000, name=name, ssl_context=tls)
        cluster.pods.append(VllmPod(name, ip, engine, llm, server))
        src.put(pod(name, ip))
    src.put({"apiVersion": "inference.networking.x-k8s.io/v1alpha2", "kind": "InferencePool",
             "metadata": {"name": POOL, "namespace": NS},
             "spec": {"selector": SELECTOR, "targetPortNumber": 8000,
                      "extensionRef": {"name": f"{NAME}-epp-service", "portNumber": 9002,
                                       "failureMode": failure_mode}}})
    src.put({"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"{NAME}-epp-service", "namespace": NS},
             "spec": {"clusterIP": cluster.epp_ip, "ports": [{"name": "grpc", "port": 9002}]}})
    src.put({"apiVersion": "v1", "kind": "Service",
             "metadata": {"name": f"{NAME}-kserve-workload-svc", "namespace": NS},
             "spec": {"clusterIP": cluster.svc_ip, "selector": SELECTOR,
                      "ports": [{"name": "https", "port": 8000, "targetPort": 8000, "appProtocol": "https"}]}})
    src.put(httproute())
    args = ["--pool-name", POOL, "--pool-namespace", NS, "--pool-group", "inference.networking.x-k8s.io",
            "--zap-encoder", "json", "--grpc-port", "9002", "--grpc-health-port", "9003", "--metrics-port", "9090",
            "--secure-serving", "--model-server-metrics-scheme", "https",
            "--model-server-metrics-https-insecure-skip-verify", "--cert-path", "/var/run/kserve/tls",
            "--refresh-metrics-interval", refresh_metrics_interval, "--config-text", config, *(epp_args or [])]
    cluster.epp = await serve_epp(args, host=cluster.epp_ip, env={}, source=src, log=cluster.epp_logs.append,
                                  seed=seed, model_servers_tls=True)
    cluster.proxy = ServiceProxy(src, NS, f"{NAME}-kserve-workload-svc", host=cluster.svc_ip, port=8000)
    await cluster.proxy.start()
    cluster.gateway = Gateway(src, host="127.0.0.1", port=0, seed=seed, upstream_tls=True)
    await cluster.gateway.start()
    epp = cluster.epp
    await cluster.wait_for(lambda: len(epp.datastore.candidates()) == replicas, what="EPP to see every pod")
    await cluster.wait_for(lambda: cluster.proxy is not None and len(cluster.proxy.endpoints()) == replicas,
                           what="kube-proxy endpoints")
    return cluster


def httproute() -> dict:
    """The managed HTTPRoute KServe renders (reference §5.2)."""
    def rule(prefix: str, backend: dict, rewrite: str) -> dict:
        return {"matches": [{"path": {"type": "PathPrefix", "value": prefix}}], "backendRefs": [backend],
                "filters": [{"type": "URLRewrite",
                             "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": rewrite}}}],
                "timeouts": {"backendRequest": "0s", "request": "0s"}}
    pool_ref = {"group": "inference.networking.x-k8s.io", "kind": "InferencePool", "name": POOL, "port": 8000}
    svc_ref = {"group": "", "kind": "Service", "name": f"{NAME}-kserve-workload-svc", "port": 8000}
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": f"{NAME}-kserve-route", "namespace": NS},
            "spec": {"parentRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                     "name": "openshift-ai-inference", "namespace": "openshift-ingress"}],
                     "rules": [rule(f"/{NS}/{NAME}/v1/completions", pool_ref, "/v1/completions"),
                               rule(f"/{NS}/{NAME}/v1/chat/completions", pool_ref, "/v1/chat/completions"),
                               rule(f"/{NS}/{NAME}", svc_ref, "/")]}}
