"""``llmd-lab bench lab`` with a load phase: conversations through the gateway, API and EPP probed."""

from __future__ import annotations

import json

import pytest

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


def test_bench_lab_class_phase_has_each_attendee_deploy_02_as_themselves(capsys):
    assert main(["bench", "lab", "--replicas", "", "--attendees", "2", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["rows"] == [] and data["load"] is None
    klass = data["class"]
    assert klass["attendees"] == 2 and klass["ready"] == 2 and not klass["errors"], klass
    assert klass["all_ready_s"] >= klass["apply_to_ready_max_s"] > 0
    assert klass["apply_p99_ms"] > 0 and klass["api_lists"] >= 1 and not klass["api_failures"]


def test_bench_lab_refuses_a_class_beyond_the_lab_limit_before_starting(capsys):
    with pytest.raises(ValueError, match="--attendees must be a whole number from 1 to 100"):
        main(["bench", "lab", "--replicas", "", "--attendees", "101"])
