"""GuideLLM in a simulated container: the real ``guidellm`` CLI, run as a child process of the lab.

Why the real tool and not a model of it: the point of the Job is that learners see GuideLLM's own numbers.
Only what a pod has and the lab does not is translated, each said in the pod's log:
- the tokenizer: every simulated model counts with the lab's shared tokenizer, so any ``--tokenizer``
  reference (a Hub name on a connected cluster, a mounted directory on a disconnected one) resolves to it,
  and the run is offline (``HF_HUB_OFFLINE=1``), as on a disconnected cluster;
- files: an absolute ``--output ...,path=/results/x.json`` under a PersistentVolumeClaim's mount path goes to
  that volume's directory on the lab's host (``mounts``, from the kubelet), anything else to a scratch
  directory of the pod (``scratch``); the log names where.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import posixpath
import shutil
import signal
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from llmd_lab.tokenizer import TOKENIZER_DIR


def _executable() -> str | None:
    beside = Path(sys.executable).with_name("guidellm")
    return str(beside) if beside.exists() else shutil.which("guidellm")


def _die_with_parent() -> None:
    """Runs in the child before exec: if the lab process dies, the benchmark is killed (Linux prctl). SIGKILL,
    not SIGTERM: a GuideLLM whose backend vanished was seen ignoring SIGTERM and running on for good."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG


def _rewrite_kv(value: str, key: str, rewrite: Callable[[str], str]) -> str:
    parts = value.split(",")
    return ",".join(f"{key}={rewrite(p.split('=', 1)[1])}" if p.startswith(f"{key}=") else p for p in parts)


def host_path(path: str, scratch: Path, mounts: Mapping[str, Path] | None = None) -> str:
    """Where the container path ``path`` lives on the lab's host: in the volume mounted at the deepest mount
    path containing it, else under ``scratch``; a relative path is left to the working directory."""
    if not path.startswith("/"):
        return path
    norm = posixpath.normpath(path)
    for mount in sorted(mounts or {}, key=len, reverse=True):
        if norm == mount or norm.startswith(mount.rstrip("/") + "/"):
            return str((mounts or {})[mount] / posixpath.relpath(norm, mount))
    return str(scratch / norm.lstrip("/"))


def lab_argv(argv: list[str], scratch: Path, mounts: Mapping[str, Path] | None = None) -> list[str]:
    """``argv`` with the tokenizer pointed at the shared one and absolute output paths on the lab's host."""
    out = list(argv)
    for i, arg in enumerate(out[:-1]):
        if arg == "--tokenizer":
            out[i + 1] = _rewrite_kv(out[i + 1], "model", lambda _ref: str(TOKENIZER_DIR))
        elif arg == "--output":
            out[i + 1] = _rewrite_kv(out[i + 1], "path", lambda p: host_path(p, scratch, mounts))
    return out


async def run(argv: list[str], env: Mapping[str, str], log: Callable[[str], None], scratch: Path,
              mounts: Mapping[str, Path] | None = None) -> int:
    """Run GuideLLM with ``argv`` (``guidellm run ...``), stream its output to ``log``, return its exit code."""
    exe = _executable()
    if exe is None:
        log("guidellm: command not found (the lab runs GuideLLM from its venv: pip install 'llmd_lab[bench]')")
        return 127
    args = lab_argv(argv[1:], scratch, mounts)
    for i, arg in enumerate(args[:-1]):
        if arg == "--output" and "path=" in args[i + 1]:
            path = Path(args[i + 1].split("path=", 1)[1].split(",", 1)[0])
            path.parent.mkdir(parents=True, exist_ok=True)
    where = ", ".join(f"{m} -> {d}" for m, d in sorted((mounts or {}).items())) or "none"
    log(f"lab: tokenizer = {TOKENIZER_DIR} (the simulated models' own); volumes on the lab host: {where}; "
        f"other files under {scratch}")
    return await run_child([exe, *args], {**env, "HF_HUB_OFFLINE": "1"}, log)


async def run_child(cmd: list[str], env: Mapping[str, str], log: Callable[[str], None],
                    cwd: Path | None = None) -> int:
    """Run a benchmark client as a child process of the lab: its output goes to the pod's ``log``, it dies with
    the lab, and a stopped container kills its whole process group. Returns its exit code."""
    child_env = {**os.environ, **env, "COLUMNS": "200"}
    proc = await asyncio.create_subprocess_exec(
        *cmd, env=child_env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=cwd,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None, start_new_session=True,
    )  # a lab that goes down takes its benchmarks with it; its own process group, so a kill reaches its workers
    assert proc.stdout is not None
    try:
        async for line in proc.stdout:
            log(line.decode(errors="replace").rstrip("\n"))
        return await proc.wait()
    except asyncio.CancelledError:  # the container is stopped: the whole process group goes
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
        raise
