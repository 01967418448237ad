"""An in-process mini cluster: simulated vLLM pods + EPP + kube-proxy Service + gateway, on loopback.

Used by the gateway/EPP integration tests and ``llmd-lab bench gateway``. Each vLLM replica (the
simulated OpenAI app over the step engine) listens on its own loopback "pod IP" at 8000, the EPP is
started with the arguments KServe passes, a kube-proxy-style listener serves the workload Service,
and the gateway routes the managed HTTPRoute (reference §5.2) — all fed by one StaticSource.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import sys
from dataclasses import asdict, dataclass, field

from llmd_lab.sim.epp.configs import COURSE_CONFIG
from llmd_lab.sim.epp.server import EppHandle
from llmd_lab.sim.epp.server import serve as serve_epp
from llmd_lab.sim.gateway.kubeproxy import ServiceProxy
from llmd_lab.sim.gateway.podhost import READY, PodSpec, serve_pod
from llmd_lab.sim.gateway.server import Gateway
from llmd_lab.sim.http import RunningServer
from llmd_lab.sim.source import StaticSource
from llmd_lab.sim.tls import self_signed_pem, ssl_context_from_pem
from llmd_lab.sim.vllm.async_engine import AsyncLLM
from llmd_lab.sim.vllm.engine import LLMEngine

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
    pods: list[VllmPod] = field(default_factory=list)  # replicas in this process
    pod_ips: list[str] = field(default_factory=list)  # every replica's IP, here or in a pod host process
    hosts: list[asyncio.subprocess.Process] = field(default_factory=list)  # pod host processes (podhost)
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
        for host in self.hosts:
            await _stop_host(host)

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
                        refresh_metrics_interval: str = "20ms", pod_processes: int = 0) -> MiniCluster:
    """Start the mini cluster. Tests scrape every 20 ms to see load quickly; KServe leaves the EPP at its
    50 ms default (``refresh_metrics_interval="50ms"``), which is what a benchmark of the lab should use.
    ``pod_processes=0`` runs the replicas in this event loop, as the lab does; ``N > 0`` spreads them over N
    pod host processes (``podhost``), as pods on other nodes than the gateway's."""
    rng = random.Random()
    base = f"127.{rng.randrange(100, 200)}.{rng.randrange(0, 256)}"
    cluster = MiniCluster(StaticSource(), base)
    src = cluster.source
    specs = [PodSpec(f"{NAME}-kserve-{i}", f"{base}.{10 + i}", QWEN, "L4", time_scale, max_num_seqs)
             for i in range(replicas)]
    try:
        if pod_processes > 0:
            for k in range(pod_processes):
                share = specs[k::pod_processes]
                if share:
                    cluster.hosts.append(await _start_host(share))
        else:
            tls = ssl_context_from_pem(*self_signed_pem())  # vLLM serves HTTPS with KServe's self-signed cert
            for spec in specs:
                engine, llm, server = await serve_pod(spec, tls)
                cluster.pods.append(VllmPod(spec.name, spec.ip, engine, llm, server))
    except BaseException:
        await cluster.stop()
        raise
    for spec in specs:
        cluster.pod_ips.append(spec.ip)
        src.put(pod(spec.name, spec.ip))
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


async def _start_host(specs: list[PodSpec]) -> asyncio.subprocess.Process:
    """A pod host process serving ``specs``; returns once it says every replica is listening."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "llmd_lab.sim.gateway.podhost", json.dumps([asdict(s) for s in specs]),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert child.stdout is not None
    try:
        while True:
            line = await asyncio.wait_for(child.stdout.readline(), timeout=120)
            if not line:
                raise RuntimeError(f"pod host for {[s.name for s in specs]} exited with {await child.wait()}")
            with contextlib.suppress(ValueError):
                said = json.loads(line)
                if isinstance(said, dict) and READY in said:
                    return child
    except BaseException:
        await _stop_host(child)
        raise


async def _stop_host(child: asyncio.subprocess.Process) -> None:
    """Close its stdin (it stops its pods and exits); kill it if it has not within 10 s."""
    if child.stdin is not None and not child.stdin.is_closing():
        child.stdin.close()
    try:
        await asyncio.wait_for(child.wait(), timeout=10)
    except TimeoutError:
        child.kill()
        await child.wait()


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
