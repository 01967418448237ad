"""Start, find, stop and wipe the lab's background process (what ``llmd-lab up/status/down/reset`` do).

``up`` spawns ``python -m llmd_lab.lab.server`` in its own session (it outlives the shell and the notebook
kernel), logs to ``$LLMD_LAB_HOME/lab.log``, and returns only once the server has written ``lab.json``
and ``/readyz`` answers; if the child dies first, the error carries the tail of its log. The running
lab is identified by ``lab.json`` *and* a live pid, so a crashed lab never looks like a running one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from llmd_lab.lab.home import LabPaths, default_home, ensure_token, secure_home

DEFAULT_PROFILE = "rhoai-3.0"  # as llmd_lab.lab.server.DEFAULT_PROFILE (not imported: it pulls in the server)

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
# Labs this process spawned: the Popen objects must outlive the call (they reap the child when it exits, so a
# long-lived parent such as a notebook kernel keeps no zombie, and Python does not warn "still running").
_SPAWNED: dict[int, subprocess.Popen] = {}


class LabError(RuntimeError):
    """The lab could not be started/stopped; the message says why and what to do."""


@dataclass(frozen=True)
class LabInfo:
    """A running lab, as ``lab.json`` describes it."""

    pid: int
    port: int
    url: str
    profile: str
    time_scale: float
    started_at: str
    gateway_port: int | None
    home: Path
    raw: dict[str, Any]

    @property
    def kubeconfig(self) -> Path:
        return LabPaths(self.home).kubeconfig

    @classmethod
    def from_json(cls, data: dict[str, Any], home: Path) -> LabInfo:
        return cls(pid=int(data["pid"]), port=int(data["port"]), url=data["url"], profile=data.get("profile", "?"),
                   time_scale=float(data.get("time_scale", 1.0)), started_at=data.get("started_at", ""),
                   gateway_port=data.get("gateway_port"), home=home, raw=data)


def resolve_home(home: Path | str | None = None) -> Path:
    return Path(home).expanduser() if home is not None else default_home()


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie, ours or not, counts as dead: it has exited)."""
    child = _SPAWNED.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        del _SPAWNED[pid]
        return False
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """Whether ``pid`` has exited but not been reaped yet (Linux ``/proc``; elsewhere: unknown → False).

    The lab runs in its own session, so once ``up`` has returned its parent is init (or a container's
    PID 1), which may reap it only a second or more later; ``down`` must not wait for that.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # "pid (comm) S …": comm may contain spaces and parentheses, the state follows the last ")"
    fields = stat.rpartition(")")[2].split()
    return bool(fields) and fields[0] in ("Z", "X")


def running(home: Path | str | None = None) -> LabInfo | None:
    """The lab serving from ``home``, or ``None`` (a stale ``lab.json`` from a crash is removed)."""
    paths = LabPaths(resolve_home(home))
    try:
        data = json.loads(paths.lab_json.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    info = LabInfo.from_json(data, paths.home)
    if not pid_alive(info.pid):
        with contextlib.suppress(FileNotFoundError):
            paths.lab_json.unlink()
        return None
    return info


def log_tail(home: Path, lines: int = 30) -> str:
    try:
        text = LabPaths(home).log.read_text(errors="replace")
    except FileNotFoundError:
        return "(no lab.log)"
    return "\n".join(text.splitlines()[-lines:])


def _ready(url: str, token: str, home: Path) -> bool:
    try:
        response = httpx.get(f"{url}/readyz", headers={"Authorization": f"Bearer {token}"}, timeout=2.0,
                             verify=LabPaths(home).pki.client_context())
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def up(
    home: Path | str | None = None,
    *,
    profile: str | None = None,
    time_scale: float = 1.0,
    port: int = 0,
    timeout: float = START_TIMEOUT_S,
    attendees: int | None = None,
) -> tuple[LabInfo, bool]:
    """Start the lab (or find the running one); returns ``(info, started_now)``.

    Raises :class:`LabError` when a lab with another profile is running, or when the new process dies or
    does not become ready before ``timeout`` (with the end of ``lab.log``).
    """
    home = resolve_home(home)
    paths = LabPaths(home)
    current = running(home)
    if current is not None:
        if profile is not None and profile != current.profile:
            raise LabError(
                f"a lab with profile {current.profile!r} is already running from {home} (pid {current.pid}); "
                f"run `llmd-lab down` first to start one with profile {profile!r}"
            )
        running_attendees = int(current.raw.get("attendees", 1))
        if attendees is not None and attendees != running_attendees:
            raise LabError(
                f"a lab with {running_attendees} attendee(s) is already running from {home} (pid {current.pid}); "
                f"run `llmd-lab down` first to start one with --attendees {attendees} (state and tokens are kept)"
            )
        return current, False
    if time_scale <= 0:
        raise LabError(f"--time-scale must be > 0 (got {time_scale})")
    secure_home(paths)
    token = ensure_token(paths)
    cmd = [sys.executable, "-m", "llmd_lab.lab", "--home", str(home), "--port", str(port),
           "--profile", profile or DEFAULT_PROFILE, "--time-scale", repr(time_scale),
           "--attendees", str(attendees or 1)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(paths.log, "ab") as log:
        log.write(f"--- llmd-lab up {time.strftime('%Y-%m-%dT%H:%M:%S')} ---\n".encode())
        log.flush()
        child = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True, close_fds=True, env=env)
    _SPAWNED[child.pid] = child
    deadline = time.monotonic() + timeout
    while True:
        code = child.poll()
        if code is not None:
            raise LabError(f"the lab process exited with code {code} before it was ready; end of {paths.log}:\n"
                           + log_tail(home))
        info = running(home)
        if info is not None and info.pid == child.pid and _ready(info.url, token, home):
            return info, True
        if time.monotonic() > deadline:
            _terminate(child.pid, STOP_TIMEOUT_S)
            raise LabError(f"the lab did not become ready within {timeout:.0f}s; end of {paths.log}:\n"
                           + log_tail(home))
        time.sleep(0.05)  # polling interval while waiting for the child's readiness signal (lab.json + /readyz)


def _terminate(pid: int, timeout: float) -> bool:
    """SIGTERM, wait up to ``timeout``, then SIGKILL; True when it had to kill."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            kill_deadline = time.monotonic() + 5
            while pid_alive(pid) and time.monotonic() < kill_deadline:
                time.sleep(0.02)
            return True
        time.sleep(0.02)
    return False


@dataclass(frozen=True)
class Stopped:
    """What ``down`` stopped, and whether it had to kill it (SIGKILL after ``timeout`` s of SIGTERM)."""

    info: LabInfo
    killed: bool
    timeout: float


def down(home: Path | str | None = None, *, timeout: float = STOP_TIMEOUT_S) -> Stopped | None:
    """Stop the running lab (SIGTERM, then SIGKILL after ``timeout``); what was stopped and how, or None."""
    home = resolve_home(home)
    info = running(home)
    if info is None:
        return None
    killed = _terminate(info.pid, timeout)
    with contextlib.suppress(FileNotFoundError):
        LabPaths(home).lab_json.unlink()
    return Stopped(info, killed, timeout)


def object_counts(home: Path | str | None = None) -> dict[str, int]:
    """Objects stored per kind, read from ``state.db`` (works whether or not the lab runs)."""
    db = LabPaths(resolve_home(home)).state_db
    if not db.exists():
        return {}
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=2)) as conn:
            rows = conn.execute("SELECT kind, count(*) FROM objects GROUP BY grp, kind ORDER BY kind").fetchall()
    except sqlite3.Error:
        return {}
    counts: dict[str, int] = {}
    for kind, n in rows:
        counts[kind] = counts.get(kind, 0) + n
    return counts


def status(home: Path | str | None = None) -> dict[str, Any]:
    """What ``llmd-lab status`` prints: running or not, URL, profile, pid, uptime, object counts."""
    home = resolve_home(home)
    info = running(home)
    out: dict[str, Any] = {"home": str(home), "running": info is not None, "kubeconfig": str(LabPaths(home).kubeconfig)}
    if info is not None:
        out.update(url=info.url, port=info.port, gateway_port=info.gateway_port, profile=info.profile, pid=info.pid,
                   time_scale=info.time_scale, started_at=info.started_at, uptime_s=_uptime(info.started_at),
                   components=info.raw.get("components", []))
    out["objects"] = object_counts(home)
    return out


def _uptime(started_at: str) -> float | None:
    try:
        started = time.mktime(time.strptime(started_at, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    except ValueError:
        return None
    return round(max(0.0, time.time() - started), 1)


def reset(home: Path | str | None = None, *, force: bool = False) -> list[str]:
    """Wipe the lab's state (objects, token, kubeconfig, log); refuses while it runs unless ``force``."""
    home = resolve_home(home)
    paths = LabPaths(home)
    if running(home) is not None:
        if not force:
            raise LabError(f"the lab in {home} is running; run `llmd-lab down` first or pass --force")
        down(home)
    removed = []
    for path in (paths.state_db, Path(f"{paths.state_db}-wal"), Path(f"{paths.state_db}-shm"), paths.kubeconfig,
                 paths.token, paths.lab_json, paths.profile_marker, paths.log, home / "identities.json"):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path.name)
    for directory in (paths.pki.directory, home / "kubeconfigs", home / "workbench"):  # users.py, workbench.py
        if directory.exists():
            shutil.rmtree(directory)
            removed.append(directory.name)
    return removed
