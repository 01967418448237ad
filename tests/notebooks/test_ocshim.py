"""The lab's `oc`: the notebooks' `!oc` cells run against the lab as they run in a workbench (which ships oc)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from llmd_lab.lab import ocshim

pytestmark = [pytest.mark.kubectl, pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl")]


def _oc(oc, lab, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(oc), *args], env={**lab.env, "PATH": os.environ["PATH"]}, capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip


def test_oc_forwards_kubectl_verbs_and_answers_whoami_and_project(lab, tmp_path):
    oc = ocshim.install(tmp_path / "bin")
    me = _oc(oc, lab, "whoami")
    assert me.returncode == 0 and me.stdout.strip(), me.stderr
    project = _oc(oc, lab, "project", "-q")
    assert project.returncode == 0, project.stderr
    listed = _oc(oc, lab, "get", "llminferenceservices", "-n", "default", "-o", "name")
    assert listed.returncode == 0, listed.stderr
    server = _oc(oc, lab, "whoami", "--show-server")
    assert server.stdout.strip() == lab.url


def test_openshift_only_verbs_are_refused_not_faked(lab, tmp_path):
    oc = ocshim.install(tmp_path / "bin")
    refused = _oc(oc, lab, "adm", "top", "nodes")
    assert refused.returncode == 2 and "not provided by the llmd-lab oc shim" in refused.stderr
