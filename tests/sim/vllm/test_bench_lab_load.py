"""``llmd-lab bench lab`` with a load phase: conversations through the gateway, API and EPP probed."""

from __future__ import annotations

import json

from llmd_lab.cli import main


def test_bench_lab_load_phase_reports_api_epp_and_cost(capsys):
    argv = ["bench", "lab", "--replicas", "2", "--conversations", "6", "--turns", "2", "--load-seconds", "60"]
    assert main([*argv, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    (row,) = data["rows"]
    assert row["replicas"] == 2 and row["rss_per_replica_mib"] > 0 and row["lab_cpu_s_to_ready"] >= 0
    load = data["load"]
    assert load["conversations"] == 6 and load["requests"] == 12 and load["ok"] == 12, load
    assert load["api_lists"] >= 1 and load["api_list_p99_ms"] is not None
    assert load["idle"]["api_lists"] >= 1
    assert load["epp_decisions"] >= 12 and load["epp_mean_ms"] > 0
