"""Helpers to build the Antora course site the way `make site` does, into a folder of the caller's choice.

The build is skipped (with the reason) when Node.js or npm is missing; every other failure is a test failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ANTORA = REPO / "antora"


@dataclass
class SiteBuild:
    """The result of one Antora run: where the site went and what Antora logged."""

    site_dir: Path
    returncode: int
    log: list[dict]
    stderr: str


def ensure_antora_installed() -> Path:
    """Install Antora from the committed lockfile (`npm ci`) unless node_modules already matches it."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("the course site needs Node.js and npm (apt-get install nodejs npm); not found on PATH")
    antora_bin = ANTORA / "node_modules" / ".bin" / "antora"
    installed_lock = ANTORA / "node_modules" / ".package-lock.json"
    lock = ANTORA / "package-lock.json"
    if (
        not antora_bin.exists()
        or not installed_lock.exists()
        or installed_lock.stat().st_mtime < lock.stat().st_mtime
    ):
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=ANTORA, check=True, capture_output=True, timeout=240
        )
    return antora_bin


def run_antora(antora_bin: Path, playbook: Path, to_dir: Path) -> SiteBuild:
    """Run Antora with JSON logs so warnings can be asserted on one by one."""
    proc = subprocess.run(
        [str(antora_bin), "--log-format=json", "--log-level=info", "--to-dir", str(to_dir), str(playbook)],
        cwd=playbook.parent,
        capture_output=True,
        text=True,
        timeout=240,
    )
    records = []
    for line in (proc.stdout + "\n" + proc.stderr).splitlines():
        line = line.strip()
        if line.startswith("{"):
            records.append(json.loads(line))
    return SiteBuild(site_dir=to_dir, returncode=proc.returncode, log=records, stderr=proc.stderr)


def course_checkout(tmp: Path) -> Path:
    """A throwaway git repository holding a copy of antora/ (node_modules linked); returns its playbook.

    Antora reads a local content source only from a plain git repository, and an engineer's checkout may be a
    linked worktree (``.git`` is a file there). Antora reads the files of the worktree, tracked or not, so the
    copy builds exactly what ``make site`` builds in a plain clone.
    """
    repo = tmp / "repo"
    shutil.copytree(ANTORA, repo / "antora", ignore=shutil.ignore_patterns("node_modules", "build"))
    (repo / "antora" / "node_modules").symlink_to(ANTORA / "node_modules", target_is_directory=True)
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    for cmd in (["git", "init", "-q", "-b", "main"], ["git", "add", "antora/antora.yml"], ["git", "commit", "-qm", "c"]):
        subprocess.run(cmd, cwd=repo, check=True, env=env, capture_output=True)
    return repo / "antora" / "antora-playbook.yml"
