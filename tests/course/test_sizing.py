"""Sizing from the notebooks' own parameters: peak GPUs, class nodes, the 2-hour cut list."""

from __future__ import annotations

import shutil
from pathlib import Path

from llmd_lab.course import header, sizing


def test_every_notebook_has_a_demand_rule_and_its_parameters_exist():
    assert set(sizing.DEMAND) == {h.number for h in header.read_all()}
    steps = sizing.plan()  # a renamed parameter raises KeyError here
    assert [s.number for s in steps] == [h.number for h in header.read_all()]


def test_peak_is_notebook_06_with_four_gpus():
    steps = sizing.plan()
    worst, per_type = sizing.peak(steps)
    # 06 frees 02's two replicas first, then runs tensor=2 on a 4-GPU node and a two-node LeaderWorkerSet;
    # 07 re-creates 02's service next to its P/D pair (also 4)
    assert (worst.number, worst.gpus) == ("06", 4)
    assert per_type == {"g6.4xlarge": 4, "g6.12xlarge": 2}
    by_number = {s.number: s.gpus for s in steps}
    assert by_number["00"] == by_number["01"] == 0 and by_number["02"] == 2 and by_number["07"] == 4
    assert by_number["09"] == 2  # 09 frees everything but its own service


def test_class_nodes_round_up_per_node_type():
    assert sizing.class_nodes({"g6.4xlarge": 4, "g6.12xlarge": 2}, 3) == {"g6.4xlarge": 12, "g6.12xlarge": 2}


def test_sizing_follows_the_parameters(tmp_path: Path):
    """Change a notebook's parameter and the table changes: nothing is hard-coded."""
    nb = tmp_path / "notebooks"
    shutil.copytree(header.NOTEBOOK_DIR, nb, ignore=shutil.ignore_patterns("*.ipynb", "images"))
    p02 = nb / "02-deploy-replicas.py"
    p02.write_text(p02.read_text().replace("replicas = 2\n", "replicas = 3\n", 1))
    p06 = nb / "06-tensor-parallelism.py"
    p06.write_text(p06.read_text().replace("multi_node = True", "multi_node = False", 1))
    by_number = {s.number: s.gpus for s in sizing.plan(nb)}
    assert by_number["02"] == 3 and by_number["06"] == 2  # 06 freed 02's three first


def test_two_hour_cut_list_keeps_the_core_and_fits():
    keep, cut = sizing.cut_list(sizing.plan(), 120)
    numbers = {s.number for s in keep}
    assert set(sizing.CORE) <= numbers
    assert sum(s.minutes + s.download_minutes for s in keep) <= 120
    assert cut and {s.number for s in cut} | numbers == set(sizing.DEMAND)


def test_report_names_peak_class_and_cut():
    text = sizing.report(attendees=3)
    assert "peak 4 GPUs during notebook 06" in text and "class of 3: 12 GPUs" in text and "120-minute slot" in text
