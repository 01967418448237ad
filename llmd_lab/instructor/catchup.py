"""Bring an attendee's project to the state notebook NN expects by running the notebooks before it, headless.

Each earlier notebook runs with papermill in order, as the attendee (their kubeconfig) or as the instructor
with the attendee's project as ``namespace``; each must reach its own "✅ NN passed" check. The first failure
stops the catch-up and names the executed copy that shows why. Executed copies are kept for the attendee to
read; nothing is skipped silently.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from llmd_lab.course import header as headers


class CatchUpError(RuntimeError):
    """A notebook did not pass; the message names it and the executed copy to open."""


@dataclass(frozen=True)
class Ran:
    slug: str
    seconds: float
    executed: Path


def before(number: str, notebook_dir: Path = headers.NOTEBOOK_DIR) -> list[str]:
    """The notebooks to run so that notebook ``number`` can start: every one with a lower number."""
    slugs = headers.slugs(notebook_dir)
    if not number.isdigit() or f"{int(number):02d}" not in {s[:2] for s in slugs}:
        raise ValueError(f"no notebook {number!r}; choose one of {', '.join(s[:2] for s in slugs)}")
    return [s for s in slugs if s[:2] < f"{int(number):02d}" and s[:2] != "10"]


def _passed(executed: Path, slug: str) -> bool:
    nb = json.loads(executed.read_text(encoding="utf-8"))
    text = "".join("".join(o.get("text", "")) for c in nb["cells"] if c["cell_type"] == "code"
                   for o in c.get("outputs", []))
    return f"✅ {slug[:2]} passed" in text


def catch_up(number: str, out_dir: Path, *, kubeconfig: Path | None = None, namespace: str | None = None,
             fast: bool = False, notebook_dir: Path = headers.NOTEBOOK_DIR,
             progress: Callable[[str], None] = print) -> list[Ran]:
    """Run the notebooks before ``number``; returns what ran. Raises :class:`CatchUpError` at the first failure."""
    import papermill

    todo = before(number, notebook_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    params: dict = {"fast": True} if fast else {}
    if namespace:
        params["namespace"] = namespace
    saved = {k: os.environ.get(k) for k in ("KUBECONFIG", "PATH")}
    if kubeconfig is not None:
        os.environ["KUBECONFIG"] = str(kubeconfig)  # papermill's kernels inherit the environment
    if shutil.which("oc") is None:  # the notebooks' `!oc` cells: a workbench ships oc; the lab gives a shim
        from llmd_lab.lab import ocshim

        bin_dir = ocshim.install(out_dir / "bin").parent
        os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    ran: list[Ran] = []
    try:
        for i, slug in enumerate(todo, 1):
            progress(f"[{i}/{len(todo)}] {slug} …")
            executed = out_dir / f"{slug}.ipynb"
            start = time.monotonic()
            try:
                papermill.execute_notebook(str(notebook_dir / f"{slug}.ipynb"), str(executed), parameters=params,
                                           cwd=str(out_dir), kernel_name="python3", progress_bar=False)
            except Exception as exc:
                raise CatchUpError(f"{slug} failed ({type(exc).__name__}); open {executed} to see the cell and "
                                   "its hint, fix it, and run catch-up again (finished notebooks re-run safely)"
                                   ) from None
            if not _passed(executed, slug):
                raise CatchUpError(f"{slug} ran but did not report '✅ {slug[:2]} passed'; see {executed}")
            ran.append(Ran(slug, time.monotonic() - start, executed))
            progress(f"[{i}/{len(todo)}] {slug} passed in {ran[-1].seconds:.0f} s")
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
    return ran
