"""GuideLLM in a simulated container: the real ``guidellm`` CLI, run as a child process of the lab.

Why the real tool and not a model of it: the point of the Job is that learners see GuideLLM's own numbers.
Only what a pod has and the lab does not is translated, each said in the pod's log:
- the tokenizer: every simulated model counts with the lab's shared tokenizer, so any ``--tokenizer``
  reference (a Hub name on a connected cluster, a mounted directory on a disconnected one) resolves to it,
  and the run is offline (``HF_HUB_OFFLINE=1``), as on a disconnected cluster;
- files: the lab mounts no volumes, so an absolute ``--output ...,path=/results/x.json`` is written under a
  scratch directory of the pod (``scratch``), whose path the log names.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from llmd_lab.tokenizer import TOKENIZER_DIR


def _executable() -> str | None:
    beside = Path(sys.executable).with_name("guidellm")
    return str(beside) if beside.exists() else shutil.which("guidellm")


def _die_with_parent() -> None:
    """Runs in the child before exec: if the lab process dies, the benchmark gets SIGTERM (Linux prctl)."""
    import ctypes
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def _rewrite_kv(value: str, key: str, rewrite: Callable[[str], str]) -> str:
    parts = value.split(",")
    return ",".join(f"{key}={rewrite(p.split('=', 1)[1])}" if p.startswith(f"{key}=") else p for p in parts)


def lab_argv(argv: list[str], scratch: Path) -> list[str]:
    """``argv`` with the tokenizer pointed at the shared one and absolute output paths under ``scratch``."""
    out = list(argv)
    for i, arg in enumerate(out[:-1]):
        if arg == "--tokenizer":
            out[i + 1] = _rewrite_kv(out[i + 1], "model", lambda _ref: str(TOKENIZER_DIR))
        elif arg == "--output":
            out[i + 1] = _rewrite_kv(out[i + 1], "path", lambda p: str(scratch / p.lstrip("/")) if p.startswith("/") else p)
    return out


async def run(argv: list[str], env: Mapping[str, str], log: Callable[[str], None], scratch: Path) -> int:
    """Run GuideLLM with ``argv`` (``guidellm run ...``), stream its output to ``log``, return its exit code."""
    exe = _executable()
    if exe is None:
        log("guidellm: command not found (the lab runs GuideLLM from its venv: pip install 'llmd_lab[bench]')")
        return 127
    args = lab_argv(argv[1:], scratch)
    for i, arg in enumerate(args[:-1]):
        if arg == "--output" and "path=" in args[i + 1]:
            path = Path(args[i + 1].split("path=", 1)[1].split(",", 1)[0])
            path.parent.mkdir(parents=True, exist_ok=True)
    log(f"lab: tokenizer = {TOKENIZER_DIR} (the simulated models' own); volumes are not mounted, files go under {scratch}")
    child_env = {**os.environ, **env, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    proc = await asyncio.create_subprocess_exec(
        exe, *args, env=child_env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )  # a lab that goes down takes its benchmarks with it
    assert proc.stdout is not None
    try:
        async for line in proc.stdout:
            log(line.decode(errors="replace").rstrip("\n"))
        return await proc.wait()
    except asyncio.CancelledError:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
