"""How the notebook tests find, parameterise, execute and scan the workshop notebooks.

Kept out of conftest.py so the static tests and the execution tests share one list of notebooks and one
definition of "CI parameters" and "looks like a secret".
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = ROOT / "notebooks"
SLUGS = (
    "00-connect-and-orient", "01-preflight", "02-deploy-replicas", "03-cache-hitting-prompts", "04-live-metrics",
    "05-benchmark-routing", "06-tensor-parallelism", "07-pd-disaggregation", "08-troubleshooting",
    "09-tune-the-scheduler", "10-cleanup",
)  # fmt: skip
#: Parameters every notebook's `parameters` cell must define (papermill overrides them in CI).
REQUIRED_PARAMETERS = {"namespace", "model", "fast", "seed"}
#: Charts notebooks export for the course site (antora/modules/ROOT/images/NN-*.svg|png; see chart-slots.js).
EXPORTS = {
    "03-cache-hitting-prompts": "03-hit-rate-predicted-vs-measured",
    "05-benchmark-routing": "05-ttft-llmd-vs-round-robin",
}
#: The lab CI runs against (issue 7): the step-08 cluster, simulated time 20× faster, with RHOAI's Kueue label
#: webhook switched on (rhoai-3.0-kueue). It judges only Kueue-managed namespaces, so user1's unlabelled project
#: runs as on rhoai-3.0 while the custom pass's project, which the instructor labels, must carry the queue label.
LAB_ARGS = ("--profile", "rhoai-3.0-kueue", "--time-scale", "20")
#: The custom pass (issue 13): attendee user2 in a second project it requests itself, which the instructor makes
#: Kueue-managed (label + LocalQueue), with another model that fits one L4, 3 replicas and another service name.
CUSTOM_PROJECT, CUSTOM_QUEUE = "llmd-custom", "workshop"
CUSTOM = {"namespace": CUSTOM_PROJECT, "model": "Qwen/Qwen3-8B", "replicas": 3}
#: The baseline service's name, changed only where `name` means that service (06 and 09 name their own).
CUSTOM_NAME = "chat"
#: Where a parameter means something else in one notebook: 06's `replicas` are tensor-parallel replicas (3 × 2 GPUs
#: fit no node), and 07 puts its P/D pods on the 4-GPU node because the 3 baseline replicas hold 3 of the 4 L4 nodes.
CUSTOM_EXCEPTIONS: dict[str, dict] = {"06-tensor-parallelism": {"replicas": None},
                                      "07-pd-disaggregation": {"pd_gpu": "g6.12xlarge"}}  # fmt: skip


def notebook(slug: str) -> Path:
    return NOTEBOOK_DIR / f"{slug}.ipynb"


def parameter_defaults(slug: str) -> dict:
    """The names and default values the notebook's `parameters` cell assigns (read from the jupytext source)."""
    import ast

    import jupytext

    [cell] = [c for c in jupytext.read(NOTEBOOK_DIR / f"{slug}.py").cells if "parameters" in c.metadata.get("tags", [])]
    return {t.id: ast.literal_eval(node.value) for node in ast.parse(cell.source).body  # type: ignore[attr-defined]
            for t in node.targets if isinstance(t, ast.Name)}  # fmt: skip


def custom_parameters(slug: str) -> dict:
    """The custom pass's parameters for ``slug``: every CUSTOM value the notebook takes, on top of the CI ones.
    Notebook 00 also gets the queue and saves it, so the later notebooks find it in the settings (set once)."""
    takes = parameter_defaults(slug)
    params = {**ci_parameters(slug), **{k: v for k, v in CUSTOM.items() if k in takes}}
    if takes.get("name") == "qwen":  # the baseline service (02's); 06 and 09 deploy their own
        params["name"] = CUSTOM_NAME
    if slug.startswith("00"):
        params["queue"] = CUSTOM_QUEUE
    params.update(CUSTOM_EXCEPTIONS.get(slug, {}))
    return {k: v for k, v in params.items() if v is not None}


def ci_parameters(slug: str, export_dir: Path | None = None) -> dict:
    """The CI shape: the `fast` switch (small counts, short deadlines); nothing else changes the lesson."""
    params: dict = {"fast": True}
    if slug in EXPORTS:
        params["export_dir"] = str(export_dir) if export_dir else ""
    return params


@dataclass
class Executed:
    slug: str
    path: Path
    seconds: float


def execute(slug: str, out_dir: Path, parameters: dict, *, tag: str = "", timeout_s: int = 240,
            env: dict[str, str] | None = None) -> Executed:  # fmt: skip
    """Run one notebook with papermill (cwd = a scratch copy of notebooks/, so relative paths resolve as in
    JupyterLab and files a notebook writes, e.g. 02's YAML, stay out of the checkout). ``env``: the kernel's
    environment for this run (another identity's ``KUBECONFIG``)."""
    import papermill

    out = out_dir / f"{slug}{tag}.ipynb"
    cwd = out_dir / "cwd"
    if not cwd.exists():
        shutil.copytree(NOTEBOOK_DIR, cwd, ignore=shutil.ignore_patterns("*.ipynb", "*.py"))
    saved = dict(os.environ)
    os.environ.update(env or {})  # the kernel papermill starts inherits this process's environment
    start = time.monotonic()
    try:
        papermill.execute_notebook(
            str(notebook(slug)), str(out), parameters=parameters, cwd=str(cwd), kernel_name="python3",
            progress_bar=False, execution_timeout=timeout_s, log_output=False,
        )  # fmt: skip
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return Executed(slug, out, time.monotonic() - start)


# --------------------------------------------------------------------------------------------- secrets
SECRET_PATTERNS = {
    "bearer token": re.compile(r"bearer\s+[A-Za-z0-9._~+/=-]{16,}", re.I),
    "OpenShift token": re.compile(r"sha256~[A-Za-z0-9_-]{20,}"),
    "JWT": re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\."),
    "PEM block": re.compile(r"-----BEGIN [A-Z ]*(PRIVATE KEY|CERTIFICATE)-----"),
    "kubeconfig": re.compile(
        r"(client-key-data|client-certificate-data|certificate-authority-data|kind:\s*Config\b)"
    ),
    "token field": re.compile(r"""["']?token["']?\s*[:=]\s*["'][A-Za-z0-9._~+/=-]{16,}"""),
}


def output_text(nb_path: Path) -> str:
    """Everything a reader of the executed notebook can see in its outputs (text, HTML, errors, widgets)."""
    nb = json.loads(nb_path.read_text())
    parts: list[str] = []
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            parts.append(json.dumps(out, ensure_ascii=False))
    parts.append(json.dumps(nb.get("metadata", {}).get("widgets", {}), ensure_ascii=False))
    return "\n".join(parts)


def find_secrets(text: str, known: list[str]) -> list[str]:
    """Names of the secret shapes found in ``text``, plus any exact known secret (the lab's token)."""
    found = [name for name, rx in SECRET_PATTERNS.items() if rx.search(text)]
    found += [f"known secret #{i}" for i, s in enumerate(known) if s and s in text]
    return found


# --------------------------------------------------------------------------------------------- lab
TIMINGS: dict[str, float] = {}


@dataclass
class NotebookLab:
    home: Path
    kubeconfig: Path  # the attendee's (user1): every notebook runs as an attendee
    out: Path  # executed notebooks land here
    exported: Path  # charts notebook 05 exports
    env: dict[str, str] = field(default_factory=dict)  # the attendee's kernel environment
    instructor_env: dict[str, str] = field(default_factory=dict)  # the admin kubeconfig instead
    other_attendee_env: dict[str, str] = field(default_factory=dict)  # user2, for the two-attendees run

    def secrets(self) -> list[str]:
        """The lab's bearer token (read from its 0600 file): must never appear in an output."""
        token = self.home / "token"
        return [token.read_text().strip()] if token.exists() else []


class FirstRuns:
    """Each notebook's first run with CI parameters, executed once on demand and remembered (result or error)."""

    def __init__(self, lab: NotebookLab) -> None:
        self.lab = lab
        self._done: dict[str, Executed | BaseException] = {}

    def get(self, slug: str) -> Executed:
        if slug not in self._done:
            start = time.monotonic()
            try:
                self._done[slug] = execute(slug, self.lab.out, ci_parameters(slug, self.lab.exported))
                TIMINGS[f"{slug} (papermill)"] = self._done[slug].seconds  # type: ignore[union-attr]
            except Exception as exc:  # papermill's PapermillExecutionError carries the failing cell's output
                TIMINGS[f"{slug} (papermill, failed)"] = time.monotonic() - start
                self._done[slug] = exc
        done = self._done[slug]
        if isinstance(done, BaseException):
            raise done
        return done
