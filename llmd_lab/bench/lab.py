"""``llmd-lab bench lab``: how long an LLMInferenceService takes from apply to Ready in the lab, and what each
simulated replica costs the lab process in memory.

A lab process is started in a temporary home on a bench profile (the rhoai-3.0 cluster with enough g6.4xlarge
nodes for the largest replica count), then for each count an LLMInferenceService of Qwen3-0.6B is applied
through the official client, timed until ``Ready`` and every replica is ready, measured (lab RSS from
/proc), and deleted. Times are wall-clock seconds at the given ``--time-scale``. ``--conversations`` adds a
load phase through the gateway (``lab_load``); ``--attendees`` a class deploying notebook 02 (``lab_class``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from llmd_lab.lab import process, users
from llmd_lab.lab.home import LabPaths
from llmd_lab.lab.profiles import PROFILE_DIR

NS = "private-ai"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--replicas", default="1,4,16", help="comma-separated replica counts (default 1,4,16)")
    parser.add_argument("--time-scale", type=float, default=50.0, help="lab time scale (default 50)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for Ready per count")
    parser.add_argument("--conversations", type=int, default=0,
                        help="after the largest count is Ready, run this many concurrent conversations through "
                             "the gateway while timing the API server and the EPP (0 skips)")  # fmt: skip
    parser.add_argument("--turns", type=int, default=2, help="turns per conversation in the load phase")
    parser.add_argument("--load-seconds", type=float, default=180.0, help="cap on the load phase's wall time")
    parser.add_argument("--attendees", type=int, default=0,
                        help="then start the lab with this many attendees and have each deploy notebook 02's "
                             "service at once, as themselves (0 skips; at most 100)")  # fmt: skip


def _bench_profile(home: Path, nodes: int) -> Path:
    base = yaml.safe_load((PROFILE_DIR / "rhoai-3.0.yaml").read_text())
    base["name"] = "bench"
    base["nodes"] = [g for g in base["nodes"] if g["type"] != "g6.4xlarge"]
    base["nodes"].append({"type": "g6.4xlarge", "count": nodes, "role": "worker", "zone": "us-east-2b"})
    base["include"] = [str(PROFILE_DIR / rel) for rel in base["include"]]
    path = home / "bench-profile.yaml"
    path.write_text(yaml.safe_dump(base, sort_keys=False))
    return path


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds the lab process has used (/proc/<pid>/stat utime + stime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _service(name: str, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "serving.kserve.io/v1alpha1", "kind": "LLMInferenceService",
        "metadata": {"name": name, "namespace": NS, "annotations": {"security.opendatahub.io/enable-auth": "false"}},
        "spec": {
            "model": {"uri": "hf://Qwen/Qwen3-0.6B", "name": "Qwen/Qwen3-0.6B"},
            "replicas": replicas,
            "router": {"route": {}, "scheduler": {}},
            "template": {
                "nodeSelector": {"node.kubernetes.io/instance-type": "g6.4xlarge"},
                "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                "containers": [{"name": "main", "resources": {"limits": {"nvidia.com/gpu": "1"},
                                                              "requests": {"cpu": "1", "memory": "8Gi"}}}],
            },
        },
    }


def _wait(check, timeout: float, what: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not happen within {timeout:.0f}s")


def run(args: argparse.Namespace) -> int:
    from kubernetes import client, config

    from llmd_lab.bench.lab_class import gpus_needed, print_class, run_class

    counts = [int(x) for x in str(args.replicas).split(",") if x.strip()]
    if args.attendees:
        users.attendee_names(args.attendees)  # a clear error for a count outside 1..100, before anything starts
    rows: list[dict[str, Any]] = []
    load: dict[str, Any] | None = None
    klass: dict[str, Any] | None = None
    nodes = max([*counts, gpus_needed(args.attendees) if args.attendees else 1])
    with tempfile.TemporaryDirectory(prefix="llmd-lab-bench-") as tmp:
        home = Path(tmp)
        profile = _bench_profile(home, nodes)
        t0 = time.monotonic()
        info, _ = process.up(home, profile=str(profile), time_scale=args.time_scale,
                             attendees=args.attendees or None)
        startup = time.monotonic() - t0
        try:
            configuration = client.Configuration()
            config.load_kube_config(config_file=str(info.kubeconfig), client_configuration=configuration)
            api = client.ApiClient(configuration)
            custom, apps = client.CustomObjectsApi(api), client.AppsV1Api(api)
            core = client.CoreV1Api(api)
            baseline = _rss_bytes(info.pid)
            for n in counts:
                name = f"bench-{n}"
                start = time.monotonic()
                custom.create_namespaced_custom_object("serving.kserve.io", "v1alpha1", NS, "llminferenceservices",
                                                       _service(name, n))

                def ready(name: str = name, n: int = n) -> bool:
                    obj = custom.get_namespaced_custom_object("serving.kserve.io", "v1alpha1", NS,
                                                              "llminferenceservices", name)
                    conds = {c["type"]: c["status"] for c in (obj.get("status") or {}).get("conditions", [])}
                    if conds.get("Ready") != "True":
                        return False
                    dep = apps.read_namespaced_deployment(f"{name}-kserve", NS)
                    return (dep.status.ready_replicas or 0) == n

                cpu0 = _cpu_s(info.pid)
                _wait(ready, args.timeout, f"{name} Ready with {n} ready replicas")
                elapsed = time.monotonic() - start
                rss = _rss_bytes(info.pid)
                rows.append({"replicas": n, "apply_to_ready_s": round(elapsed, 3),
                             "lab_rss_mib": round(rss / 2**20, 1),
                             "rss_per_replica_mib": round((rss - baseline) / 2**20 / n, 1),
                             "lab_cpu_s_to_ready": round(_cpu_s(info.pid) - cpu0, 2),
                             "time_scale": args.time_scale})
                if args.conversations and n == max(counts):
                    load = _load_phase(args, info, custom, core, name)
                custom.delete_namespaced_custom_object("serving.kserve.io", "v1alpha1", NS, "llminferenceservices",
                                                       name)
                _wait(lambda name=name: not core.list_namespaced_pod(
                    NS, label_selector=f"app.kubernetes.io/name={name}").items, args.timeout, f"{name} deleted")
            if args.attendees:
                rss0 = _rss_bytes(info.pid)
                klass = run_class(home, core, args.attendees, args.timeout)
                klass["lab_rss_growth_mib"] = round((_rss_bytes(info.pid) - rss0) / 2**20, 1)
        except Exception:
            print(f"bench lab failed; end of lab.log:\n{process.log_tail(home, 40)}", file=sys.stderr)
            raise
        finally:
            process.down(home)
    if args.json:
        print(json.dumps({"startup_s": round(startup, 3), "rows": rows, "load": load, "class": klass}))
        return 0
    print(f"lab start-up: {startup:.2f} s (bench profile: {nodes} g6.4xlarge nodes, time scale "
          f"{args.time_scale:g})")
    print(f"{'replicas':>8}  {'apply→Ready s':>13}  {'lab RSS MiB':>11}  {'RSS/replica MiB':>15}  {'CPU s to Ready':>14}")
    for r in rows:
        print(f"{r['replicas']:>8}  {r['apply_to_ready_s']:>13.2f}  {r['lab_rss_mib']:>11.1f}  "
              f"{r['rss_per_replica_mib']:>15.1f}  {r['lab_cpu_s_to_ready']:>14.2f}")
    if load:
        _print_load(load)
    if klass:
        print_class(klass)
        print(f"  lab RSS growth during the class phase: {klass['lab_rss_growth_mib']} MiB")
    return 0


def _load_phase(args: argparse.Namespace, info: Any, custom: Any, core: Any, name: str) -> dict[str, Any]:
    """Conversations through the gateway on the largest service, with the API and EPP probed meanwhile."""
    from llmd_lab.bench.lab_load import ApiProbe, epp_decision_latency, run_conversations

    obj = custom.get_namespaced_custom_object("serving.kserve.io", "v1alpha1", NS, "llminferenceservices", name)
    url = (obj.get("status") or {}).get("url")
    if not url:
        return {"error": f"{name} has no status.url"}
    with ApiProbe(core, NS, "idle") as idle:
        time.sleep(5)  # a fixed 5 s sample of the idle API server, not a wait for readiness
    rss0, cpu0 = _rss_bytes(info.pid), _cpu_s(info.pid)
    with ApiProbe(core, NS, "load") as busy:
        result = run_conversations(url, "Qwen/Qwen3-0.6B", args.conversations, args.turns,
                                   args.load_seconds, info.raw.get("ca_file"))  # fmt: skip
    result.update(busy.summary())
    result["idle"] = idle.summary()
    result.update(epp_decision_latency(core, NS, name))
    pods = core.list_namespaced_pod(NS, label_selector=f"app.kubernetes.io/name={name}").items
    result["container_restarts_during_load"] = sum(cs.restart_count for p in pods
                                                   for cs in p.status.container_statuses or [])  # fmt: skip
    if result["errors"]:  # what the lab logged about them (the temporary home is gone after the run)
        log = LabPaths(info.home).log.read_text(errors="replace").splitlines()
        result["lab_log_warnings"] = [line[:300] for line in log if "WARNING" in line or "ERROR" in line][-10:]
    result["lab_cpu_s_during_load"] = round(_cpu_s(info.pid) - cpu0, 1)
    result["lab_rss_growth_mib"] = round((_rss_bytes(info.pid) - rss0) / 2**20, 1)
    return result


def _fmt(v: Any, spec: str = ".1f") -> str:
    return "n/a" if v is None else format(v, spec)


def _print_load(load: dict[str, Any]) -> None:
    if "error" in load:
        print(f"\nload phase: {load['error']}")
        return
    idle = load["idle"]
    print(f"\n{load['conversations']} concurrent conversations × {load['turns']} turns through the gateway: "
          f"{load['ok']}/{load['requests']} requests ok in {load['wall_s']:.1f} s ({load['requests_per_s']:.1f}/s), "
          f"client TTFT p50 {_fmt(load['client_ttft_p50_ms'])} ms, p99 {_fmt(load['client_ttft_p99_ms'])} ms")  # fmt: skip
    if load["errors"]:
        print(f"  errors seen: {'; '.join(load['errors'])}")
        for line in load.get("lab_log_warnings", []):
            print(f"    lab.log: {line}")
    if load["api_failures"]:
        print(f"  API failures under load: {'; '.join(load['api_failures'])}")
    print(f"  API list pods p50/p99: idle {_fmt(idle['api_list_p50_ms'])}/{_fmt(idle['api_list_p99_ms'])} ms, "
          f"under load {_fmt(load['api_list_p50_ms'])}/{_fmt(load['api_list_p99_ms'])} ms ({load['api_lists']} lists)")  # fmt: skip
    print(f"  watch delivery p50/p99: idle {_fmt(idle['watch_p50_ms'])}/{_fmt(idle['watch_p99_ms'])} ms, "
          f"under load {_fmt(load['watch_p50_ms'])}/{_fmt(load['watch_p99_ms'])} ms ({load['watch_events']} events)")  # fmt: skip
    if "epp_error" in load:
        print(f"  EPP decision latency: {load['epp_error']}")
    else:
        print(f"  EPP decision latency: mean {load['epp_mean_ms']:.2f} ms, p99 ≤ {_fmt(load['epp_p99_bucket_ms'], '.1f')}"
              f" ms over {load['epp_decisions']} decisions")  # fmt: skip
    print(f"  lab process during load: {load['lab_cpu_s_during_load']} CPU s, RSS +{load['lab_rss_growth_mib']} MiB; "
          f"container restarts in the service: {load['container_restarts_during_load']}")
