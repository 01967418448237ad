"""``llmd-lab bench gateway`` end to end at a tiny size: fields and their plumbing, not numbers."""

from __future__ import annotations

import argparse
import json

from llmd_lab.bench import gateway as bench


def test_a_tiny_run_reports_every_figure_with_the_pods_apart_in_phase_2(capsys):
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(["--streams", "2", "--windows", "2", "--requests-per-stream", "1", "--max-tokens", "4",
                              "--throughput-tokens", "16", "--json"])
    assert bench.run(args) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows["requests_per_path"] == 4 and rows["latency_pod_processes"] == 0
    assert rows["throughput_pod_processes"] == 2 and rows["throughput_streams"] == 2
    for path in ("direct", "gateway"):
        assert rows[f"{path}_ttft_p50_ms"] > 0 and rows[f"{path}_tokens_per_s"] > 0
        assert rows[f"{path}_pods_cpu_us_per_token"] is not None  # the pod host processes were measured
    # phase 1's third path: the same requests, each to a pod drawn at random, so the hop is judged apart
    # from placement
    assert rows["direct_random_ttft_p50_ms"] > 0 and rows["direct_random_ttft_p95_ms"] > 0
    assert isinstance(rows["hop_overhead_p50_pct"], float) and isinstance(rows["hop_overhead_p95_pct"], float)
    # direct requests never reach the gateway; every gateway request (warm-up: one window) asked the EPP
    assert rows["extproc_in_process"] == 2 * (2 + 4) and rows["extproc_http"] == 0
    assert 1 <= rows["gateway_upstream_connections"] <= 2 * 6  # phase 1: 6 requests, a stale one retried once
    assert rows["load_before"].startswith("load average")


def test_every_path_of_a_pair_sends_the_same_requests_and_only_the_placement_differs():
    spec = {"streams": 4, "requests_per_stream": 3, "vary": True}
    plan = bench._plan(spec, 0, 32)
    assert plan == bench._plan(spec, 0, 32) and plan != bench._plan(spec, 1, 32)  # a pair's plan is reproducible
    urls = ["https://pod-a", "https://pod-b"]
    pinned = {bench._url("direct", urls, s, draw) for s, reqs in enumerate(plan) for _, _, draw in reqs[:1]}
    assert pinned == set(urls)  # streams alternate between the pods, each stream always on its own
    for s, reqs in enumerate(plan):
        assert {bench._url("direct", urls, s, draw) for _, _, draw in reqs} == {urls[s % 2]}
    drawn = [bench._url("direct-random", urls, s, draw) for s, reqs in enumerate(plan) for _, _, draw in reqs]
    assert set(drawn) == set(urls) and drawn != [urls[s % 2] for s in range(4) for _ in range(3)]
