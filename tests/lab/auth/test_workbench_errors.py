"""The workbench command's refusals say what to do (no lab, unknown attendee, no mount namespace, no command)."""

from __future__ import annotations

import shutil

import pytest

from llmd_lab.lab import users, workbench
from llmd_lab.lab.home import LabPaths


def test_prepare_needs_a_running_lab_and_a_known_attendee(tmp_path):
    paths = LabPaths(tmp_path)
    users.lab_identities(paths, 1)
    with pytest.raises(workbench.WorkbenchError, match="llmd-lab up"):
        workbench.prepare(paths, "user1")
    with pytest.raises(workbench.WorkbenchError, match="--attendees N"):
        workbench.prepare(paths, "user4")


def test_a_refused_namespace_is_a_clear_error():
    with pytest.raises(workbench.WorkbenchError, match="cannot make a private mount namespace"):
        workbench.check_unshare([shutil.which("false") or "false", "--", "jupyter", "lab"])


@pytest.mark.skipif(shutil.which("unshare") is None, reason="unshare is not installed")
def test_the_command_runs_in_a_private_mount_namespace_with_the_files_at_the_service_account_path(tmp_path):
    bench = workbench.Workbench("user1", tmp_path / "sa", tmp_path / "home", {})
    argv = workbench.unshare_argv(bench, ["jupyter", "lab"])
    assert "--mount" in argv and argv[-2:] == ["jupyter", "lab"]
    assert workbench.SA_MOUNT in argv and str(tmp_path / "sa") in argv
    with pytest.raises(workbench.WorkbenchError, match="give the command"):
        workbench.unshare_argv(bench, [])
