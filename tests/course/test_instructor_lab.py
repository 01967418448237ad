"""The instructor's kit against a real lab with three attendees (``llmd-lab up --attendees 3``): catch-up, the
class view, sizing.

Attendees ``user1..3`` each have a project of the same name. Catch-up runs here as the instructor into the
attendee's project (``--namespace userK``); ``--user userK`` resolves the attendee's own kubeconfig and project.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from labhelpers import Lab, lab_connection, running_lab

from llmd_lab.course import progress, sizing

pytestmark = [pytest.mark.slow]
ATTENDEES = ("user1", "user2", "user3")


def _cli(lab: Lab, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llmd_lab.cli", *args], env=lab.env, capture_output=True,
                          text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def class_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running_lab(tmp_path_factory.mktemp("class-lab"), "--time-scale", "20", "--attendees", "3") as lab:
        yield lab


def test_catch_up_class_view_and_sizing_agree(class_lab: Lab, tmp_path: Path):
    out = tmp_path / "executed"
    ran = _cli(class_lab, "catch-up", "03", "--namespace", ATTENDEES[0], "--fast", "--out", str(out))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    for i, slug in enumerate(("00-connect-and-orient", "01-preflight", "02-deploy-replicas"), 1):
        assert f"[{i}/3] {slug} passed in" in ran.stdout  # progress, one line per notebook
        assert (out / f"{slug}.ipynb").is_file()
    assert f"{ATTENDEES[0]} is ready for notebook 03" in ran.stdout

    ran = _cli(class_lab, "catch-up", "02", "--namespace", ATTENDEES[1], "--fast", "--out", str(tmp_path / "b"))
    assert ran.returncode == 0, ran.stdout + ran.stderr

    view = _cli(class_lab, "class", "--json")
    assert view.returncode == 0, view.stderr
    rows = {r["project"]: r for r in json.loads(view.stdout)}
    first, second = rows[ATTENDEES[0]], rows[ATTENDEES[1]]
    assert first["passed"] == "00 01 02" and "qwen (Ready)" in first["services"]
    assert second["passed"] == "00 01" and second["gpus"] == 0 and second["services"] == "-"
    assert ATTENDEES[2] not in rows  # nothing started there yet
    # what the sizing table predicts for an attendee after notebook 02 is what the lab shows them holding
    assert first["gpus"] == {s.number: s.gpus for s in sizing.plan()}["02"] == 2

    text = _cli(class_lab, "class").stdout
    assert ATTENDEES[0] in text and "00 01 02" in text


def test_catch_up_stops_at_the_first_failure_and_names_the_notebook(class_lab: Lab, tmp_path: Path):
    ran = _cli(class_lab, "catch-up", "02", "--namespace", "no-such-project", "--fast", "--out", str(tmp_path))
    assert ran.returncode == 1
    assert "00-connect-and-orient failed" in ran.stderr and str(tmp_path / "00-connect-and-orient.ipynb") in ran.stderr


def test_catch_up_rejects_an_unknown_notebook(class_lab: Lab):
    ran = _cli(class_lab, "catch-up", "42", "--namespace", ATTENDEES[2])
    assert ran.returncode == 1 and "no notebook '42'" in ran.stderr


def test_progress_is_per_project_and_merges(class_lab: Lab):
    with lab_connection(class_lab, ATTENDEES[2]) as conn:
        progress.record(conn, "00-connect-and-orient")
        progress.record(conn, "01-preflight")
        assert set(progress.passed(conn)) == {"00-connect-and-orient", "01-preflight"}
        assert set(progress.class_progress(conn)[ATTENDEES[2]]) == {"00-connect-and-orient", "01-preflight"}


def test_sizing_command(class_lab: Lab):
    ran = _cli(class_lab, "sizing", "--attendees", "3")
    assert ran.returncode == 0 and "class of 3: 12 GPUs" in ran.stdout
    assert _cli(class_lab, "sizing", "--attendees", "0").returncode == 1


def test_user_resolves_the_attendees_kubeconfig_and_project(class_lab: Lab, monkeypatch: pytest.MonkeyPatch):
    from llmd_lab.instructor import cli

    monkeypatch.setenv("LLMD_LAB_HOME", str(class_lab.home))
    kubeconfig = cli._user_kubeconfig("user2")
    assert kubeconfig.is_file() and cli._context_namespace(kubeconfig) == "user2"
    with pytest.raises(ValueError, match="no kubeconfig for attendee 'nobody'"):
        cli._user_kubeconfig("nobody")


