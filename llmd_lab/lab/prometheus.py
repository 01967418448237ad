"""``llmd-lab prometheus``: Debian's Prometheus scraping the lab's pods as OpenShift AI's monitoring would.

On a cluster, KServe creates the PodMonitor ``kserve-llm-isvc-vllm-engine`` and the ServiceMonitor
``kserve-llm-isvc-scheduler`` (assets/monitoring/), and the platform Prometheus scrapes every vLLM and EPP pod,
renaming each series to ``kserve_<name>`` and adding ``llm_isvc_*`` labels. Here the same relabelling
(:func:`llmd_lab.lab.controller.monitoring.scrape_config`) runs in a real ``prometheus`` on 127.0.0.1, and the
pods to scrape are followed the way the operator's service discovery follows them: the pod list is read through
the Kubernetes API and written as ``file_sd`` target files, which Prometheus re-reads when they change. So the
shipped dashboard (``assets/dashboards/llmd-openshift.json``) and notebook 04's PromQL answer the same on the lab
as on a cluster: point a Grafana at ``http://127.0.0.1:<port>`` or use Prometheus's own graph page.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from llmd_lab.lab.controller.monitoring import scrape_config

DEFAULT_PORT = 9091
SELECTOR = "app.kubernetes.io/part-of=llminferenceservice"


class PrometheusError(RuntimeError):
    """Prometheus could not be started or did not become ready; the message says what to do."""


def prometheus_config(targets_dir: Path, *, interval: str = "5s") -> dict:
    """``prometheus.yml``: KServe's two monitors as scrape jobs whose targets come from ``targets_dir/<job>.json``."""
    config = scrape_config([], interval=interval)
    for job in config["scrape_configs"]:
        job.pop("static_configs")
        job["file_sd_configs"] = [{"files": [str(targets_dir / f"{job['job_name']}.json")]}]
    return config


def target_groups(pods: list[dict], *, interval: str = "5s") -> dict[str, list[dict]]:
    """Per job, the ``file_sd`` target groups (address + labels) of the pods that are up now."""
    return {job["job_name"]: job["static_configs"] for job in scrape_config(pods, interval=interval)["scrape_configs"]}


def write_targets(targets_dir: Path, groups: dict[str, list[dict]]) -> bool:
    """Write each job's target file if it changed (atomically, so Prometheus never reads half a file)."""
    changed = False
    for job, group in groups.items():
        path = targets_dir / f"{job}.json"
        text = json.dumps(group, indent=1, sort_keys=True)
        if path.is_file() and path.read_text() == text:
            continue
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
        changed = True
    return changed


def list_pods(kubeconfig: str | None) -> list[dict]:
    """The LLMInferenceService pods of every namespace, as the API returns them (needs cluster-wide list)."""
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    with client.ApiClient(configuration) as api:
        pods = client.CoreV1Api(api).list_pod_for_all_namespaces(label_selector=SELECTOR)
        return [api.sanitize_for_serialization(p) for p in pods.items]


class LabPrometheus:
    """A ``prometheus`` process on 127.0.0.1 with the lab's scrape config; :meth:`refresh` follows the pods."""

    def __init__(self, workdir: Path, *, port: int = DEFAULT_PORT, interval: str = "5s",
                 kubeconfig: str | None = None, binary: str | None = None):
        self.workdir = workdir
        self.port = port
        self.interval = interval
        self.kubeconfig = kubeconfig
        self.binary = binary or shutil.which("prometheus")
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def targets_dir(self) -> Path:
        return self.workdir / "targets"

    def refresh(self) -> bool:
        """Re-read the pods and rewrite the target files; True if a target came or went."""
        return write_targets(self.targets_dir, target_groups(list_pods(self.kubeconfig), interval=self.interval))

    def start(self, ready_timeout_s: float = 60.0) -> LabPrometheus:
        if self.binary is None:
            raise PrometheusError("no `prometheus` on PATH: install Debian's (apt-get install prometheus)")
        self.targets_dir.mkdir(parents=True, exist_ok=True)
        self.refresh()
        config = self.workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump(prometheus_config(self.targets_dir, interval=self.interval), sort_keys=False))
        log = (self.workdir / "prometheus.log").open("ab")
        self.proc = subprocess.Popen(
            [self.binary, f"--config.file={config}", f"--storage.tsdb.path={self.workdir / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=log)  # fmt: skip
        log.close()
        self._wait_ready(ready_timeout_s)
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise PrometheusError(f"prometheus exited with {self.proc.returncode}; see {self.workdir / 'prometheus.log'}"
                                      f" (port {self.port} in use? pass --port)")
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)  # polling a condition: Prometheus announces readiness only on /-/ready
        self.stop()
        raise PrometheusError(f"prometheus was not ready within {timeout_s:g}s; see {self.workdir / 'prometheus.log'}")

    def query(self, expr: str) -> list[dict]:
        """An instant query; raises with Prometheus's error when the expression is wrong."""
        body = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10).json()
        if body.get("status") != "success":
            raise PrometheusError(f"{expr}: {body.get('error', body)}")
        return body["data"]["result"]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> LabPrometheus:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def follow(prom: LabPrometheus, stop: threading.Event, every_s: float) -> None:
    """Refresh the targets every ``every_s`` until ``stop`` is set (a failed read is reported and retried)."""
    while not stop.wait(every_s):
        try:
            if prom.refresh():
                print("targets changed", flush=True)
        except Exception as exc:  # the API may be restarting: keep the last targets and try again
            print(f"could not list pods: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prometheus", help="run Prometheus (127.0.0.1) scraping the lab's pods as OpenShift AI does")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"listen port (default {DEFAULT_PORT})")
    p.add_argument("--interval", default="5s", help="scrape interval (default 5s)")
    p.add_argument("--dir", type=Path, default=None, help="config, targets and TSDB (default $LLMD_LAB_HOME/prometheus)")
    p.set_defaults(func=cmd_prometheus)


def cmd_prometheus(args: Any) -> int:
    from llmd_lab.lab import process
    from llmd_lab.lab.home import LabPaths

    paths = LabPaths(process.resolve_home())
    if not paths.kubeconfig.is_file():
        print(f"llmd-lab: no lab kubeconfig at {paths.kubeconfig}: start the lab first (llmd-lab up)", file=sys.stderr)
        return 1
    prom = LabPrometheus(args.dir or paths.home / "prometheus", port=args.port, interval=args.interval,
                         kubeconfig=str(paths.kubeconfig))
    try:
        prom.start()
    except PrometheusError as exc:
        print(f"llmd-lab: {exc}", file=sys.stderr)
        return 1
    print(f"Prometheus: {prom.url} (series named kserve_… as on OpenShift AI). Grafana: add it as a Prometheus "
          "data source and import assets/dashboards/llmd-openshift.json. Ctrl-C stops it.", flush=True)
    stop = threading.Event()
    try:
        follow(prom, stop, 2.0)
    except KeyboardInterrupt:
        pass
    finally:
        prom.stop()
    return 0
