"""Fixtures for executing the notebooks: one fresh lab in the CI shape, run as an attendee, and per-notebook timings.

The lab runs as a real process (``llmd-lab up --profile rhoai-3.0 --time-scale 20 --attendees 2``) in a temporary
``LLMD_LAB_HOME``. Kernels started by papermill and nbval inherit ``KUBECONFIG`` pointing at attendee ``user1``'s
kubeconfig (``llmd-lab kubeconfig --user user1``), which is how a learner's kernel finds a cluster after ``oc login``;
the instructor's (admin) kubeconfig is kept for the instructor's preflight. ``PATH`` gains the lab's ``oc`` shim
(the workbench image ships ``oc``) and ``LLMD_LAB_SETTINGS`` a private settings file, so notebook 00's saved
settings never touch the developer's home.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from nbrun import CUSTOM_PROJECT, CUSTOM_QUEUE, LAB_ARGS, TIMINGS, FirstRuns, NotebookLab

from llmd_lab.lab import ocshim

ATTENDEE, OTHER_ATTENDEE = "user1", "user2"


def _cli(home: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LLMD_LAB_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "llmd_lab.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip


def _settings(directory: Path) -> str:
    """An attendee's settings file as notebook 00 leaves it, with the deliberate TLS choice the lab needs: KServe's
    workload certificate is self-signed (no SANs), so the round-robin baseline skips verification on purpose."""
    path = directory / "settings.yaml"
    path.write_text("insecure_skip_verify: true\n")
    return str(path)


@pytest.fixture(scope="session")
def notebook_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NotebookLab]:
    home = tmp_path_factory.mktemp("nb-lab-home")
    started = _cli(home, "up", "--port", "0", "--attendees", "2", *LAB_ARGS)
    if started.returncode != 0:
        pytest.fail(f"llmd-lab up --attendees 2 {' '.join(LAB_ARGS)} failed:\n{started.stderr[-2000:]}")
    try:
        found, other = (_cli(home, "kubeconfig", "--user", user) for user in (ATTENDEE, OTHER_ATTENDEE))
        for user, got in ((ATTENDEE, found), (OTHER_ATTENDEE, other)):
            if got.returncode != 0 or not Path(got.stdout.strip()).exists():
                pytest.fail(f"`llmd-lab kubeconfig --user {user}` gave no kubeconfig: {got.stderr[-1000:]}")
        bin_dir = tmp_path_factory.mktemp("bin")
        ocshim.install(bin_dir)
        common = {"LLMD_LAB_HOME": str(home), "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
                  "LLMD_LAB_SETTINGS": _settings(tmp_path_factory.mktemp("settings"))}  # fmt: skip
        attendee = {**common, "KUBECONFIG": found.stdout.strip()}
        instructor = {**common, "KUBECONFIG": str(home / "kubeconfig")}
        second = {**common, "KUBECONFIG": other.stdout.strip(),
                  "LLMD_LAB_SETTINGS": _settings(tmp_path_factory.mktemp("settings2"))}  # fmt: skip
        out, exported = tmp_path_factory.mktemp("executed"), tmp_path_factory.mktemp("exported")
        saved = {k: os.environ.get(k) for k in attendee}
        os.environ.update(attendee)  # papermill's and nbval's kernels inherit this environment
        try:
            yield NotebookLab(home, Path(attendee["KUBECONFIG"]), out, exported, {**os.environ, **attendee},
                              {**os.environ, **instructor}, {**os.environ, **second})  # fmt: skip
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    finally:
        _cli(home, "down")


def kubectl(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    """Run kubectl with ``env``'s kubeconfig; fail the test with kubectl's own error."""
    proc = subprocess.run(["kubectl", *args], env=env, input=stdin, capture_output=True, text=True, timeout=120,
                          check=False)  # fmt: skip
    if proc.returncode != 0:
        pytest.fail(f"kubectl {' '.join(args)}: {proc.stderr[-1500:]}")
    return proc.stdout


PROJECT_REQUEST = f"""apiVersion: project.openshift.io/v1
kind: ProjectRequest
metadata: {{name: {CUSTOM_PROJECT}}}
displayName: llm-d workshop, custom parameters
"""
LOCAL_QUEUE = f"""apiVersion: kueue.x-k8s.io/v1beta1
kind: LocalQueue
metadata: {{name: {CUSTOM_QUEUE}, namespace: {CUSTOM_PROJECT}}}
spec: {{clusterQueue: rhoai-main-queue}}
"""


@pytest.fixture(scope="session")
def custom_project(notebook_lab: NotebookLab) -> str:
    """Attendee user2's second project, as on RHOAI: user2 requests it (ProjectRequest, as `oc new-project` does),
    the instructor makes it Kueue-managed (the operator's ``kueue.openshift.io/managed=true`` label) and gives it
    a LocalQueue. From then on RHOAI's Kueue webhook refuses any LLMInferenceService there without the queue label."""
    kubectl(notebook_lab.other_attendee_env, "create", "-f", "-", stdin=PROJECT_REQUEST)
    kubectl(notebook_lab.instructor_env, "label", "namespace", CUSTOM_PROJECT, "kueue.openshift.io/managed=true")
    kubectl(notebook_lab.instructor_env, "apply", "-f", "-", stdin=LOCAL_QUEUE)
    return CUSTOM_PROJECT


@pytest.fixture(scope="session")
def first_runs(notebook_lab: NotebookLab) -> FirstRuns:
    """Each notebook's first (papermill) run, executed on first use and remembered: tests that need a notebook's
    run ask for it by name, so they pass or fail the same in any order or alone."""
    return FirstRuns(notebook_lab)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if not TIMINGS:
        return
    terminalreporter.section("notebook times")
    for name, seconds in TIMINGS.items():
        terminalreporter.write_line(f"{seconds:7.1f} s  {name}")
    total = sum(v for k, v in TIMINGS.items() if not k.startswith("  "))  # cell-only lines are inside the nbval run
    terminalreporter.write_line(f"{total:7.1f} s  total")
