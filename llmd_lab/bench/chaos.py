"""``llmd-lab bench chaos``: load through the gateway while pods are killed and bad objects are written, then a
``kill -9`` of the lab — and what every client saw.

A lab is started in a temporary home (the bench profile of ``bench lab``), an LLMInferenceService of
Qwen3-0.6B is applied and waited for, and then, for ``--duration`` seconds and all at once:

- ``--concurrency`` clients stream chat completions through the gateway (``status.url``);
- a workload pod is deleted every ``--kill-every`` seconds (its ReplicaSet replaces it);
- the objects of issue 17's reproductions are written once (Pod ``cpu: abc``, Service port 70000 and
  ``clusterIP: 0.0.0.0``, a Deployment with 10^23 replicas, a ConfigMap key ``a b``);
- a writer creates ConfigMaps and remembers each one the API acknowledged (201);
- a prober times a small API read every 100 ms.

Each streamed request ends as exactly one of: *answered* (``data: [DONE]`` and no error event), *failed
cleanly* (an HTTP error status, an error event, or a transport error the client sees — a reset or an
incomplete chunked body, which is how Envoy signals a broken upstream), *hung* (no end within
``--request-timeout``), or *truncated passed off as complete* (the response ended cleanly without
``[DONE]``: the failure the lab must never produce). After the load the lab process is killed with
SIGKILL and started again, and every acknowledged write is looked up: the ones missing are *lost*.
Everything binds 127.0.0.1; counts and time are bounded by the flags.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from llmd_lab.bench.lab import NS, _bench_profile, _service
from llmd_lab.kserve.labels import workload_selector
from llmd_lab.lab import process
from llmd_lab.lab.home import LabPaths

NAME = "chaos"
LLMISVC = f"/apis/serving.kserve.io/v1alpha1/namespaces/{NS}/llminferenceservices"
SCRATCH_NS = "default"
WRITE_LABEL = "llmd-lab.io/chaos-write"
FAILED_PAUSE_S = 0.2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of chaos (default 30)")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent streaming clients (default 8)")
    parser.add_argument("--replicas", type=int, default=3, help="vLLM replicas (default 3)")
    parser.add_argument("--kill-every", type=float, default=5.0, help="seconds between pod deletions (default 5)")
    parser.add_argument("--max-tokens", type=int, default=64, help="tokens per answer (default 64)")
    parser.add_argument("--request-timeout", type=float, default=30.0,
                        help="seconds after which a request counts as hung (default 30)")
    parser.add_argument("--writes-per-s", type=float, default=20.0, help="ConfigMap creations per second (default 20)")
    parser.add_argument("--time-scale", type=float, default=50.0, help="lab time scale (default 50)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for Ready (default 300)")


@dataclass
class Tally:
    """What the clients saw, counted as it happens."""

    requests: Counter[str] = field(default_factory=Counter)  # answered / failed / hung / truncated
    why: Counter[str] = field(default_factory=Counter)  # what the failed/hung/truncated ones saw
    writes_acked: list[str] = field(default_factory=list)
    writes_refused: int = 0
    api_latency_s: list[float] = field(default_factory=list)
    api_errors: int = 0
    pods_killed: int = 0
    bad_objects: dict[str, str] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------ clients
async def one_request(client: httpx.AsyncClient, url: str, body: dict, timeout: float) -> tuple[str, str]:
    """Stream one chat completion; how it ended (answered, failed, hung or truncated) and why."""
    try:
        async with asyncio.timeout(timeout), client.stream("POST", url, json=body) as response:
            if response.status_code != 200:
                await response.aread()
                return "failed", f"HTTP {response.status_code}"
            done = errored = False
            async for line in response.aiter_lines():
                if line.strip() == "data: [DONE]":
                    done = True
                elif line.startswith("data:") and '"error"' in line:
                    errored = True
    except TimeoutError:
        return "hung", "no end within the request timeout"
    except httpx.HTTPError as exc:  # reset, refused, incomplete chunked body: the client knows it failed
        return "failed", type(exc).__name__
    if errored:
        return "failed", "error event in the stream"
    return ("answered", "") if done else ("truncated", "ended without [DONE]")


async def load(url: str, args: argparse.Namespace, deadline: float, tally: Tally) -> None:
    body = {"model": "Qwen/Qwen3-0.6B", "stream": True, "max_tokens": args.max_tokens,
            "messages": [{"role": "user", "content": "Tell me about the history of the printing press."}]}

    async def client_loop(i: int) -> None:
        async with httpx.AsyncClient(timeout=httpx.Timeout(args.request_timeout)) as client:
            while time.monotonic() < deadline:
                outcome, why = await one_request(client, url, body, args.request_timeout)
                tally.requests[outcome] += 1
                if why:
                    tally.why[why] += 1
                if outcome == "failed":
                    await asyncio.sleep(FAILED_PAUSE_S)  # a client pauses before it retries (bounded load)

    await asyncio.gather(*(client_loop(i) for i in range(args.concurrency)))


async def kill_pods(api: httpx.AsyncClient, every: float, deadline: float, tally: Tally) -> None:
    rng = random.Random(0)
    while time.monotonic() + every < deadline:
        await asyncio.sleep(every)
        pods = (await api.get(f"/api/v1/namespaces/{NS}/pods",
                              params={"labelSelector": workload_selector(NAME)})).json().get("items", [])
        alive = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        if alive:
            victim = rng.choice(alive)["metadata"]["name"]
            if (await api.delete(f"/api/v1/namespaces/{NS}/pods/{victim}")).status_code < 300:
                tally.pods_killed += 1


def bad_objects() -> dict[str, tuple[str, dict]]:
    """Issue 17's reproductions: what a curious attendee might type (label → (collection path, object))."""
    meta = {"namespace": SCRATCH_NS, "labels": {"llmd-lab.io/chaos": "bad"}}
    core = f"/api/v1/namespaces/{SCRATCH_NS}"
    return {
        "Pod cpu=abc": (f"{core}/pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bad-cpu", **meta},
                                          "spec": {"containers": [{"name": "c", "image": "registry.example/a:1",
                                                                   "resources": {"requests": {"cpu": "abc"}}}]}}),
        "Service port 70000": (f"{core}/services", {"apiVersion": "v1", "kind": "Service",
                                                     "metadata": {"name": "bad-port", **meta},
                                                     "spec": {"ports": [{"port": 70000}]}}),
        "Service clusterIP 0.0.0.0": (f"{core}/services", {"apiVersion": "v1", "kind": "Service",
                                                            "metadata": {"name": "bad-ip", **meta},
                                                            "spec": {"clusterIP": "0.0.0.0", "ports": [{"port": 8080}]}}),
        "Deployment replicas 10^23": (f"/apis/apps/v1/namespaces/{SCRATCH_NS}/deployments", {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bad-replicas", **meta},
            "spec": {"replicas": 10**23, "selector": {"matchLabels": {"app": "bad-replicas"}},
                     "template": {"metadata": {"labels": {"app": "bad-replicas"}},
                                  "spec": {"containers": [{"name": "c", "image": "registry.example/a:1"}]}}}}),
        "ConfigMap key 'a b'": (f"{core}/configmaps", {"apiVersion": "v1", "kind": "ConfigMap",
                                                        "metadata": {"name": "bad-key", **meta}, "data": {"a b": "x"}}),
    }


async def write_bad_objects(api: httpx.AsyncClient, tally: Tally) -> None:
    for label, (path, obj) in bad_objects().items():
        response = await api.post(path, content=json.dumps(obj), headers={"content-type": "application/json"})
        tally.bad_objects[label] = "accepted" if response.status_code < 300 else f"refused {response.status_code}"


async def writer(api: httpx.AsyncClient, per_s: float, deadline: float, tally: Tally) -> None:
    i = 0
    while time.monotonic() < deadline:
        name = f"chaos-write-{i}"
        i += 1
        obj = {"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": name, "labels": {WRITE_LABEL: "1"}}, "data": {"i": str(i)}}
        try:
            response = await api.post(f"/api/v1/namespaces/{SCRATCH_NS}/configmaps", json=obj)
        except httpx.HTTPError:
            tally.writes_refused += 1
        else:
            if response.status_code == 201:
                tally.writes_acked.append(name)
            else:
                tally.writes_refused += 1
        await asyncio.sleep(1.0 / per_s)


async def prober(api: httpx.AsyncClient, deadline: float, tally: Tally) -> None:
    while time.monotonic() < deadline:
        start = time.monotonic()
        try:
            response = await api.get(f"/api/v1/namespaces/{SCRATCH_NS}/configmaps", params={"limit": "1"})
            response.raise_for_status()
            tally.api_latency_s.append(time.monotonic() - start)
        except httpx.HTTPError:
            tally.api_errors += 1
        await asyncio.sleep(0.1)


# ------------------------------------------------------------------------------------------------ the run
def api_client(home: Path, url: str, timeout: float = 30.0) -> httpx.AsyncClient:
    paths = LabPaths(home)
    return httpx.AsyncClient(base_url=url, timeout=timeout, verify=paths.pki.client_context(),
                             headers={"Authorization": f"Bearer {paths.token.read_text().strip()}"})


async def chaos(home: Path, url: str, args: argparse.Namespace, tally: Tally) -> None:
    async with api_client(home, url) as api:
        service = _service(NAME, args.replicas)
        created = await api.post(LLMISVC, json=service)
        if created.status_code >= 300:
            raise RuntimeError(f"cannot create the LLMInferenceService: {created.text}")
        gateway = await _ready_url(api, args.timeout)
        deadline = time.monotonic() + args.duration
        await asyncio.gather(
            load(f"{gateway.rstrip('/')}/v1/chat/completions", args, deadline, tally),
            kill_pods(api, args.kill_every, deadline, tally),
            write_bad_objects(api, tally),
            writer(api, args.writes_per_s, deadline, tally),
            prober(api, deadline, tally),
        )


async def _ready_url(api: httpx.AsyncClient, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        obj = (await api.get(f"{LLMISVC}/{NAME}")).json()
        conds = {c["type"]: c["status"] for c in (obj.get("status") or {}).get("conditions", [])}
        if conds.get("Ready") == "True" and (obj.get("status") or {}).get("url"):
            return obj["status"]["url"]
        await asyncio.sleep(0.2)
    raise TimeoutError(f"the LLMInferenceService was not Ready within {timeout:.0f}s")


async def count_lost(home: Path, url: str, acked: list[str]) -> int:
    async with api_client(home, url) as api:
        response = await api.get(f"/api/v1/namespaces/{SCRATCH_NS}/configmaps",
                                 params={"labelSelector": f"{WRITE_LABEL}=1"})
        found = {item["metadata"]["name"] for item in response.json().get("items", [])}
    return len(set(acked) - found)


def crash_and_restart(home: Path, info: process.LabInfo, profile: Path, args: argparse.Namespace) -> process.LabInfo:
    """``kill -9`` the lab (no chance to flush anything) and start it again from the same state."""
    os.kill(info.pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while process.pid_alive(info.pid) and time.monotonic() < deadline:
        time.sleep(0.05)  # waiting for the killed process to be gone before reusing its state directory
    restarted, _ = process.up(home, profile=str(profile), time_scale=args.time_scale)
    return restarted


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def summary(tally: Tally, lost: int, args: argparse.Namespace) -> dict[str, Any]:
    lat = tally.api_latency_s
    return {
        "duration_s": args.duration, "concurrency": args.concurrency, "replicas": args.replicas,
        "time_scale": args.time_scale,
        "requests": {"answered": tally.requests["answered"], "failed_cleanly": tally.requests["failed"],
                     "hung": tally.requests["hung"], "truncated_passed_as_complete": tally.requests["truncated"],
                     "why": dict(tally.why)},
        "writes": {"acknowledged": len(tally.writes_acked), "refused": tally.writes_refused, "lost": lost},
        "api": {"n": len(lat), "errors": tally.api_errors, "p50_ms": round(_quantile(lat, 0.5) * 1000, 1),
                "p99_ms": round(_quantile(lat, 0.99) * 1000, 1), "max_ms": round(max(lat, default=0) * 1000, 1)},
        "pods_killed": tally.pods_killed,
        "bad_objects": tally.bad_objects,
    }


def print_summary(s: dict[str, Any]) -> None:
    r, w, a = s["requests"], s["writes"], s["api"]
    print(f"bench chaos: {s['duration_s']:g} s, {s['concurrency']} streaming clients through the gateway, "
          f"{s['replicas']} replicas, {s['pods_killed']} pod kills, time scale {s['time_scale']:g}")
    print(f"requests   answered {r['answered']}  failed cleanly {r['failed_cleanly']}  hung {r['hung']}  "
          f"truncated passed off as complete {r['truncated_passed_as_complete']}")
    if r["why"]:
        print("           " + ", ".join(f"{why}: {n}" for why, n in sorted(r["why"].items())))
    print(f"writes     acknowledged {w['acknowledged']}  lost {w['lost']} (after kill -9 and up)  "
          f"refused {w['refused']}")
    print(f"API        p50 {a['p50_ms']:.1f} ms  p99 {a['p99_ms']:.1f} ms  max {a['max_ms']:.1f} ms  "
          f"(n={a['n']}, errors {a['errors']})")
    for label, outcome in s["bad_objects"].items():
        print(f"bad object {label}: {outcome}")


def run(args: argparse.Namespace) -> int:
    tally = Tally()
    with tempfile.TemporaryDirectory(prefix="llmd-lab-chaos-") as tmp:
        home = Path(tmp)
        profile = _bench_profile(home, args.replicas + 1)
        info, _ = process.up(home, profile=str(profile), time_scale=args.time_scale)
        try:
            asyncio.run(chaos(home, info.url, args, tally))
            info = crash_and_restart(home, info, profile, args)
            lost = asyncio.run(count_lost(home, info.url, tally.writes_acked))
        finally:
            process.down(home)
    result = summary(tally, lost, args)
    if args.json:
        print(json.dumps(result))
    else:
        print_summary(result)
    return 0
