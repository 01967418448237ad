"""``llmd-lab bench api``: how fast the lab starts and answers, through the official client over HTTP.

Measures, in a throw-away ``LLMD_LAB_HOME``: cold start (spawn → ``/readyz`` answers and ``lab.json``
exists), and p50/p99 of get, create, list of 1,000 ConfigMaps, and watch-event delivery (create returns →
the watcher has the ADDED event). Numbers are wall-clock on this machine; compare ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import json
import queue
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from llmd_lab.lab import process

NAMESPACE = "bench-api"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--starts", type=int, default=3, help="cold starts to time (default 3)")
    parser.add_argument("--n", type=int, default=200, help="requests per latency metric (default 200)")
    parser.add_argument("--list-size", type=int, default=1000, help="objects in the listed namespace (default 1000)")
    parser.add_argument("--lists", type=int, default=20, help="list requests to time (default 20)")
    parser.add_argument("--profile", default=None, help="cluster profile of the benchmarked lab")


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _row(metric: str, samples_s: list[float]) -> dict[str, Any]:
    ms = [s * 1000 for s in samples_s]
    return {"metric": metric, "n": len(ms), "p50_ms": round(statistics.median(ms), 2),
            "p99_ms": round(_quantile(ms, 0.99), 2), "max_ms": round(max(ms), 2)}


def _cold_starts(root: Path, starts: int, profile: str | None) -> list[float]:
    samples = []
    for i in range(starts):
        home = root / f"cold-{i}"
        t0 = time.perf_counter()
        process.up(home, profile=profile, port=0)
        samples.append(time.perf_counter() - t0)
        process.down(home)
    return samples


def _core(home: Path) -> Any:
    from kubernetes import client, config  # imported here: `llmd-lab` builds every bench parser on each call

    configuration = client.Configuration()
    config.load_kube_config(config_file=str(home / "kubeconfig"), client_configuration=configuration)
    return client.CoreV1Api(client.ApiClient(configuration))


def _cm(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"bench": "api"}}, "data": {"payload": "x" * 64}}


def _timed(fn, *args, **kwargs) -> float:
    t0 = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - t0


def _watch_latencies(core: Any, n: int) -> list[float]:
    """Create ``n`` ConfigMaps one at a time; time from sending the create to the watcher holding ADDED.

    The event can arrive before the create's response does, so the clock starts when the create is sent.
    """
    from kubernetes import watch

    rv = core.list_namespaced_config_map(NAMESPACE, limit=1).metadata.resource_version
    seen: queue.Queue[tuple[str, float]] = queue.Queue()
    w = watch.Watch()
    stopping = threading.Event()

    def watcher() -> None:
        try:
            for event in w.stream(core.list_namespaced_config_map, NAMESPACE, resource_version=rv,
                                  label_selector="bench=watch", timeout_seconds=120):
                if event["type"] == "ADDED":
                    seen.put((event["object"].metadata.name, time.perf_counter()))
        except Exception:
            if not stopping.is_set():
                raise

    thread = threading.Thread(target=watcher, daemon=True)
    thread.start()
    # one warm-up object proves the watch is established before timing starts
    core.create_namespaced_config_map(NAMESPACE, {**_cm("watch-warmup"), "metadata": {
        "name": "watch-warmup", "labels": {"bench": "watch"}}})
    seen.get(timeout=30)
    samples = []
    for i in range(n):
        name = f"watch-{i}"
        sent = time.perf_counter()
        core.create_namespaced_config_map(NAMESPACE, {"metadata": {"name": name, "labels": {"bench": "watch"}}})
        got, at = seen.get(timeout=30)
        if got != name:
            raise RuntimeError(f"watch delivered {got} while waiting for {name}")
        samples.append(at - sent)
    stopping.set()
    w.stop()
    return samples


def measure(args: argparse.Namespace, root: Path) -> list[dict[str, Any]]:
    rows = [_row("cold start (spawn → API ready)", _cold_starts(root, args.starts, args.profile))]
    home = root / "lab"
    process.up(home, profile=args.profile, port=0)
    try:
        core = _core(home)
        core.create_namespace({"metadata": {"name": NAMESPACE}})
        creates = [_timed(core.create_namespaced_config_map, NAMESPACE, _cm(f"cm-{i}")) for i in range(args.n)]
        rows.append(_row("create ConfigMap", creates))
        gets = [_timed(core.read_namespaced_config_map, f"cm-{i % args.n}", NAMESPACE) for i in range(args.n)]
        rows.append(_row("get ConfigMap", gets))
        for i in range(args.n, args.list_size):
            core.create_namespaced_config_map(NAMESPACE, _cm(f"cm-{i}"))
        count = len(core.list_namespaced_config_map(NAMESPACE, label_selector="bench=api").items)
        if count != max(args.list_size, args.n):
            raise RuntimeError(f"expected {args.list_size} ConfigMaps, listed {count}")
        lists = [_timed(core.list_namespaced_config_map, NAMESPACE, label_selector="bench=api")
                 for _ in range(args.lists)]
        rows.append(_row(f"list {count} ConfigMaps", lists))
        rows.append(_row("watch delivery (create sent → ADDED)", _watch_latencies(core, args.n)))
    finally:
        process.down(home)
    return rows


def run(args: argparse.Namespace) -> int:
    root = Path(tempfile.mkdtemp(prefix="llmd-bench-api-"))
    try:
        rows = measure(args, root)
    finally:
        for home in root.iterdir():
            process.down(home)
        shutil.rmtree(root, ignore_errors=True)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'metric':<36} {'n':>5} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9}")
    for row in rows:
        print(f"{row['metric']:<36} {row['n']:>5} {row['p50_ms']:>9.2f} {row['p99_ms']:>9.2f} {row['max_ms']:>9.2f}")
    return 0
