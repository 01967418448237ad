"""The kit's own traffic runner in a simulated container: ``python -m llmd_lab.traffic`` from a claim.

Why it runs the copy on the claim and not the lab's installed package: the Job (``assets/jobs/
traffic-runner-job.yaml``) runs in GuideLLM's image, which has every library the runner imports but not the
kit; the kit's source is copied onto the results claim and found through ``PYTHONPATH``. The lab runs the
same: each ``PYTHONPATH`` entry under a claim's mount path is that volume's directory on the lab's host, and
a claim without ``llmd_lab/`` fails the way CPython's ``runpy`` does (exit 1, "No module named 'llmd_lab'"),
so a missing copy is not hidden. The libraries come from the lab's venv, standing in for the image's.
``--output`` under a mount path lands on the volume, as for GuideLLM (:func:`llmd_lab.sim.guidellm.host_path`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from llmd_lab.sim.guidellm import host_path, run_child

MODULE = "llmd_lab.traffic"


def lab_pythonpath(value: str, scratch: Path, mounts: Mapping[str, Path] | None) -> list[str]:
    """The container's ``PYTHONPATH`` entries as directories on the lab's host."""
    return [host_path(entry, scratch, mounts) for entry in value.split(os.pathsep) if entry]


def lab_argv(argv: list[str], scratch: Path, mounts: Mapping[str, Path] | None) -> list[str]:
    """The runner's arguments with an absolute ``--output`` on the lab's host."""
    out = list(argv)
    for i, arg in enumerate(out[:-1]):
        if arg == "--output":
            out[i + 1] = host_path(out[i + 1], scratch, mounts)
    return [a if not a.startswith("--output=") else "--output=" + host_path(a[9:], scratch, mounts) for a in out]


async def run(argv: list[str], env: Mapping[str, str], log: Callable[[str], None], scratch: Path,
              mounts: Mapping[str, Path] | None = None) -> int:
    """Run ``python -m llmd_lab.traffic ARGS`` from the kit copy on ``PYTHONPATH``; return its exit code."""
    path = lab_pythonpath(env.get("PYTHONPATH", ""), scratch, mounts)
    if not any((Path(p) / "llmd_lab" / "traffic" / "__main__.py").is_file() for p in path):
        log(f"{argv[0]}: Error while finding module specification for {MODULE!r} "
            "(ModuleNotFoundError: No module named 'llmd_lab')")  # fmt: skip
        return 1
    args = lab_argv(argv[3:], scratch, mounts)
    scratch.mkdir(parents=True, exist_ok=True)
    log(f"lab: {MODULE} from {os.pathsep.join(path)} (the claim); its libraries from the lab's venv; "
        f"other files under {scratch}")
    return await run_child([sys.executable, "-m", MODULE, *args], {**env, "PYTHONPATH": os.pathsep.join(path)},
                           log, cwd=scratch)
