"""The instructor's kit against a real lab with three attendee projects: catch-up, class view, sizing.

Attendees are projects. When the lab has users (``llmd-lab up --attendees N``), catch-up runs as the attendee
(``--user``); until then the instructor runs it with ``--namespace`` — both run the same notebooks headless.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from labhelpers import Lab, lab_connection, running_lab

from llmd_lab import k8s
from llmd_lab.course import progress, sizing

pytestmark = [pytest.mark.slow]
ATTENDEES = ("attendee-1", "attendee-2", "attendee-3")


def _cli(lab: Lab, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llmd_lab.cli", *args], env=lab.env, capture_output=True,
                          text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def class_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running_lab(tmp_path_factory.mktemp("class-lab"), "--time-scale", "20") as lab:
        with lab_connection(lab, "default") as conn:
            for ns in ATTENDEES:
                k8s.ensure_namespace(conn, ns)
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
    assert ran.returncode == 0 and "class of 3: 18 GPUs" in ran.stdout
    assert _cli(class_lab, "sizing", "--attendees", "0").returncode == 1


def test_user_without_attendees_says_how_to_get_them(class_lab: Lab):
    ran = _cli(class_lab, "catch-up", "02", "--user", "nobody")
    assert ran.returncode == 1 and "nobody" in ran.stderr


