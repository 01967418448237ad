"""CustomResourceDefinitions the lab can install, as data: one YAML file per CRD, named ``<plural>.<group>.yaml``.

Which CRDs a lab cluster *has* is the cluster profile's choice (a fresh cluster lacks KServe's, an RHOAI 3.0
cluster has them all), so this package only stores the definitions and loads them by name. The schemas are
written from the upstream API types (KServe rhoai-3.0, Gateway API Inference Extension v1.0, Gateway API v1,
LeaderWorkerSet, Kueue, prometheus-operator, OpenShift, Kuadrant, OLM, OpenShift AI operator) as facts: field
names, enums, bounds and defaults match; descriptions are ours and aim to teach (``kubectl explain``).
"""

from __future__ import annotations

import copy
from functools import cache
from importlib import resources

import yaml

from llmd_lab.lab.crds import embedded

_SUFFIX = ".yaml"


def available() -> list[str]:
    """Names (``<plural>.<group>``) of every CRD this package ships, sorted."""
    root = resources.files(__package__)
    return sorted(p.name[: -len(_SUFFIX)] for p in root.iterdir() if p.name.endswith(_SUFFIX))


@cache
def _read(name: str) -> dict:
    path = resources.files(__package__).joinpath(name + _SUFFIX)
    if not path.is_file():
        known = ", ".join(available())
        raise KeyError(f"no CRD named {name!r} in llmd_lab.lab.crds; known CRDs: {known}")
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    if doc.get("metadata", {}).get("name") != name:
        raise ValueError(f"{name}{_SUFFIX} defines {doc.get('metadata', {}).get('name')!r}; the file name must match")
    return embedded.expand(doc, _read)  # PodSpec & co. from maintained schemas (embedded.py)


def load(names: list[str] | None = None) -> list[dict]:
    """The CRD objects (fresh copies, safe to mutate) for ``names``, or every shipped CRD when ``None``.

    Raises ``KeyError`` naming the known CRDs when a name is not shipped, so a profile typo fails loudly.
    """
    wanted = available() if names is None else list(names)
    return [copy.deepcopy(_read(name)) for name in wanted]


def by_kind(group: str, kind: str) -> list[dict]:
    """Every shipped CRD for ``group``/``kind`` (e.g. ``inference.networking.k8s.io``, ``InferencePool``)."""
    return [crd for crd in load() if crd["spec"]["group"] == group and crd["spec"]["names"]["kind"] == kind]
