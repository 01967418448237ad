"""The DefaultStorageClass admission plugin (kubernetes 1.32
``plugin/pkg/admission/storage/storageclass/setdefault/admission.go``): a PersistentVolumeClaim created
without ``spec.storageClassName`` gets the cluster's default StorageClass (the one annotated
``storageclass.kubernetes.io/is-default-class: "true"``; the newest if several). An explicit ``""`` means
"no class" and is left alone, as is a claim when the cluster has no default class.
"""

from __future__ import annotations

from typing import Any

DEFAULT_CLASS_ANNOTATIONS = ("storageclass.kubernetes.io/is-default-class",
                             "storageclass.beta.kubernetes.io/is-default-class")


def is_default(storage_class: dict[str, Any]) -> bool:
    annotations = storage_class["metadata"].get("annotations") or {}
    return any(annotations.get(key) == "true" for key in DEFAULT_CLASS_ANNOTATIONS)


def admit(pvc: dict[str, Any], storage: Any) -> None:
    """Set ``spec.storageClassName`` of a new claim to the default class, if it names none."""
    spec = pvc.get("spec")
    if not isinstance(spec, dict) or spec.get("storageClassName") is not None:
        return
    classes = storage.by_namespace(("storage.k8s.io", "StorageClass")).get("", {}).values()
    defaults = sorted((c for c in classes if is_default(c)),
                      key=lambda c: (c["metadata"].get("creationTimestamp", ""), c["metadata"]["name"]))
    if defaults:
        spec["storageClassName"] = defaults[-1]["metadata"]["name"]
