"""The RBAC objects a cluster starts with: kube-apiserver's bootstrap policy, OpenShift's additions, KServe's.

The data lives in ``bootstrap-*.yaml`` next to this module (each file names its upstream source); here it
becomes complete API objects, with aggregated roles already filled, ready for the store.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml

from llmd_lab.lab.apiserver.auth.aggregation import aggregate_all
from llmd_lab.lab.apiserver.auth.policy import RBAC_VERSION

BOOTSTRAP_FILES = ("bootstrap-kube.yaml", "bootstrap-openshift.yaml", "bootstrap-kserve.yaml")
BOOTSTRAP_LABEL = {"kubernetes.io/bootstrapping": "rbac-defaults"}


def _load(name: str) -> list[dict[str, Any]]:
    text = resources.files(__package__).joinpath(name).read_text()
    return list(yaml.safe_load(text) or [])


def bootstrap_objects() -> list[dict[str, Any]]:
    """Every bootstrap ClusterRole and ClusterRoleBinding as a full object, aggregation applied."""
    objects: list[dict[str, Any]] = []
    for name in BOOTSTRAP_FILES:
        for obj in _load(name):
            obj["apiVersion"] = RBAC_VERSION
            meta = obj.setdefault("metadata", {})
            if name == "bootstrap-kube.yaml":
                meta["labels"] = {**BOOTSTRAP_LABEL, **(meta.get("labels") or {})}
                meta["annotations"] = {"rbac.authorization.kubernetes.io/autoupdate": "true"}
            if obj["kind"] == "ClusterRole":
                obj.setdefault("rules", [])
            objects.append(obj)
    aggregate_all([o for o in objects if o["kind"] == "ClusterRole"])
    return objects
