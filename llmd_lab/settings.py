"""Workshop settings, set once and picked up by every notebook: project, queue label, TLS, HF token, opt-ins.

An attendee should not retype their project in eleven notebooks. :func:`load` reads one YAML file
(``$LLMD_LAB_SETTINGS``, default ``~/.config/llmd-lab/settings.yaml``, written by :func:`save` from
notebook 00) and lets a notebook's papermill parameters override any field (a parameter left at ``None``
keeps the file's value). A field absent from both is discovered where it lives: the project from the
workbench / ``oc login`` context (``connect()`` does that; never a hard-coded name), the Kueue queue from
the project's only LocalQueue (:func:`discover`).

The Hugging Face token is never stored here: the file names where it is (``hf_token_file``) or it comes
from ``$HF_TOKEN``; nothing here prints it (``repr`` shows only whether one is set).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from llmd_lab import access, k8s
from llmd_lab.connection import Connection

KUEUE_API = "kueue.x-k8s.io/v1beta1"


def settings_path() -> Path:
    """``$LLMD_LAB_SETTINGS`` or ``~/.config/llmd-lab/settings.yaml`` (a workbench's home is persistent)."""
    return Path(os.environ.get("LLMD_LAB_SETTINGS") or Path.home() / ".config/llmd-lab/settings.yaml").expanduser()


@dataclass
class Settings:
    """What differs between attendees and clusters; everything else is a notebook parameter."""

    namespace: str | None = None  # your project; None: the workbench's / your `oc login` context's
    queue: str | None = None  # Kueue LocalQueue for kueue.x-k8s.io/queue-name; None: discovered
    ca_file: str | None = None  # CA bundle that signs KServe's serving certificate
    insecure_skip_verify: bool = False  # deliberate: accept KServe's self-signed certificate unverified
    hf_token_file: str | None = None  # a file holding the token (the token itself is never stored)
    allow_disruptive: bool = False  # opt-in for lessons that break things or take many GPUs on a cluster
    source: str = field(default="defaults", compare=False)

    @property
    def tls(self) -> dict[str, Any]:
        """Keyword arguments for ``traffic.Target`` / clients: the CA or the deliberate skip-verify."""
        return {"ca_file": self.ca_file, "insecure": self.insecure_skip_verify}

    @property
    def curl_tls(self) -> str:
        """The same TLS choice as ``curl`` flags, for the notebooks' ``!curl`` cells."""
        if self.insecure_skip_verify:
            return "-k"
        return f"--cacert {self.ca_file}" if self.ca_file else ""

    def hf_token(self) -> str | None:
        """The Hugging Face token from ``$HF_TOKEN`` or ``hf_token_file`` (for a Secret; never printed)."""
        if os.environ.get("HF_TOKEN"):
            return os.environ["HF_TOKEN"]
        if self.hf_token_file and Path(self.hf_token_file).expanduser().exists():
            return Path(self.hf_token_file).expanduser().read_text().strip() or None
        return None

    def __repr__(self) -> str:
        shown = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("hf_token_file", "source")}
        token = "set" if self.hf_token() else "not set"
        return f"Settings({', '.join(f'{k}={v!r}' for k, v in shown.items())}, hf_token={token}; from {self.source})"


def load(path: Path | None = None, **overrides: Any) -> Settings:
    """The saved settings with every non-``None`` override (a notebook's papermill parameters) on top."""
    path = path or settings_path()
    data: dict[str, Any] = {}
    if path.exists():
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path} must hold a YAML mapping of settings, not {type(data).__name__}")
    known = {f.name for f in fields(Settings)} - {"source"}
    unknown = sorted(set(data) - known) + sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown}; known: {sorted(known)}")
    cfg = Settings(**data, source=str(path) if path.exists() else "defaults")
    given = {k: v for k, v in overrides.items() if v is not None}
    return replace(cfg, **given, source=cfg.source + (" + parameters" if given else ""))


def save(cfg: Settings, path: Path | None = None) -> Path:
    """Write ``cfg`` for every later notebook (mode 0600: it may name a token file)."""
    path = path or settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {k: v for k, v in asdict(cfg).items() if k != "source" and v not in (None, False)}
    path.write_text(yaml.safe_dump(data, sort_keys=True))
    path.chmod(0o600)
    return path


def discover(conn: Connection, cfg: Settings) -> Settings:
    """Fill what the cluster can tell: the project's LocalQueue when there is exactly one (Kueue label); then say
    whether the project is Kueue-managed and, if it is, which queue label every service will carry."""
    if cfg.queue is None and k8s.has_kind(conn, KUEUE_API, "LocalQueue"):
        try:
            found = k8s.list_objects(conn, KUEUE_API, "LocalQueue", conn.namespace)
        except access.PermissionDenied:
            found = []  # may not list LocalQueues here: the queue stays unset (set it in your settings); preflight says so
        queues = [q["metadata"]["name"] for q in found]
        cfg = replace(cfg, queue=queues[0]) if len(queues) == 1 else cfg
    note = kueue_note(conn, cfg)
    if note:
        print(note)
    return cfg


def kueue_managed(conn: Connection, namespace: str) -> str | None:
    """The label that makes ``namespace`` Kueue-managed on RHOAI (``kueue.openshift.io/managed=true`` or the
    legacy ``kueue-managed=true``, rhods-operator ``pkg/cluster/const.go``), or None (also when unreadable)."""
    from llmd_lab.preflight import KUEUE_MANAGED_LABELS  # one list of the operator's labels

    labels = k8s.namespace_labels(conn, namespace) or {}
    return next((key for key in KUEUE_MANAGED_LABELS if labels.get(key) == "true"), None)


def kueue_note(conn: Connection, cfg: Settings) -> str | None:
    """One sentence for a Kueue-managed project: the queue label its services get, or what to set when none is
    known (RHOAI's Kueue webhook refuses an LLMInferenceService without it). None elsewhere."""
    managed = kueue_managed(conn, conn.namespace)
    if managed is None:
        return None
    if cfg.queue:
        return (f"Project {conn.namespace} is Kueue-managed ({managed}=true): your services get the label "
                f"kueue.x-k8s.io/queue-name={cfg.queue} (from {cfg.source}).")  # fmt: skip
    return (f"⚠ Project {conn.namespace} is Kueue-managed ({managed}=true) but no queue is set: RHOAI's Kueue webhook "
            "will refuse your services (missing required label \"kueue.x-k8s.io/queue-name\"). Ask your instructor "
            "for your LocalQueue's name and set queue=<name> in notebook 00 (it saves it for every notebook).")  # fmt: skip


def require_opt_in(conn: Connection, cfg: Settings, lesson: str, *, need_gpus: int = 0) -> None:
    """Refuse a disruptive or GPU-heavy lesson on a real cluster unless the attendee opted in and the
    project's GPU quota has room for ``need_gpus``.

    The lab is yours alone, so it always runs there; on a shared cluster set ``allow_disruptive: true``
    (``settings.save``) or pass ``allow_disruptive=True`` as a parameter.
    """
    if conn.is_lab:
        return
    if cfg.allow_disruptive:
        from llmd_lab import preflight  # preflight draws tables (pandas); only needed on this path

        [quota] = preflight.check_quota(conn, need_gpus=need_gpus)
        if quota.status == preflight.FAIL:
            raise PermissionError(f"{lesson} needs {need_gpus} GPUs: {quota.evidence}. {quota.fix}")
        return
    raise PermissionError(
        f"{lesson} breaks things or takes many GPUs, and {conn.server} is a shared cluster: run it on the local "
        "lab, or opt in with allow_disruptive=True (a notebook parameter or settings.save) after checking your "
        "project's GPU quota (notebook 01)."
    )
