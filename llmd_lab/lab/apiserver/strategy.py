"""What kube-apiserver does to an object between decoding and storage, before the validating webhooks:
mutate (prune unknown fields, fill schema defaults, set CRD status) and validate (ObjectMeta, the OpenAPI
schema, the built-in rules of builtin_validation.py and the CRD checks of apiextensions).

In kube-apiserver these are the resource's REST *strategy* (``PrepareForCreate``, ``Validate``...) and the
decoder; the REST layer (rest.py) runs them in order: mutate → validate → validating admission → storage.
"""

from __future__ import annotations

import base64
from typing import Any

from llmd_lab.lab.apiserver import builtin_validation, decoding, errors, objectmeta, validation
from llmd_lab.lab.apiserver.registry import ResourceRegistry, ResourceType

CRD_GK = ("apiextensions.k8s.io", "CustomResourceDefinition")
CRD_CLEANUP = "customresourcecleanup.apiextensions.k8s.io"


def decode(obj: dict, rt: ResourceType) -> None:
    """Typed decoding (400 for what the Go types cannot hold) and the v1 → internal conversions that change
    what is stored: a Secret's write-only ``stringData`` merged into ``data`` (core/v1 conversion.go), the
    RBAC ``apiGroup`` defaults (rbac/v1 defaults.go)."""
    decoding.check(obj, rt)
    string_data = obj.get("stringData")
    if rt.group_kind == ("", "Secret") and isinstance(string_data, dict) \
            and all(isinstance(v, str) for v in string_data.values()):  # else the schema reports the type
        data = obj.get("data") if isinstance(obj.get("data"), dict) else {}
        for key, value in obj.pop("stringData").items():
            data[key] = base64.b64encode(value.encode()).decode()
        obj["data"] = data
    if rt.group == builtin_validation.RBAC_GROUP and rt.kind.endswith("Binding"):
        ref = obj.get("roleRef")
        if isinstance(ref, dict) and not ref.get("apiGroup"):
            ref["apiGroup"] = builtin_validation.RBAC_GROUP
        subjects = obj.get("subjects")
        for subject in subjects if isinstance(subjects, list) else []:
            if isinstance(subject, dict) and subject.get("kind") in ("User", "Group") and not subject.get("apiGroup"):
                subject["apiGroup"] = builtin_validation.RBAC_GROUP


def carry_allocated(new: dict, current: dict, rt: ResourceType) -> None:
    """A Service update that leaves ``clusterIP`` empty keeps the allocated one (service REST
    patchAllocatedValues), so only a real change is refused as immutable."""
    if rt.group_kind != ("", "Service"):
        return
    spec, old = new.get("spec"), current.get("spec") or {}
    if isinstance(spec, dict) and not spec.get("clusterIP") and old.get("clusterIP"):
        spec["clusterIP"] = old["clusterIP"]
        if old.get("clusterIPs"):
            spec["clusterIPs"] = list(old["clusterIPs"])


def mutate(obj: dict, registry: ResourceRegistry) -> dict:
    """Drop fields no schema declares (decoding and CRD pruning), then fill CRD schema defaults."""
    return validation.apply_defaults(validation.prune(obj, registry), registry)


def validate(obj: dict, rt: ResourceType, registry: ResourceRegistry, old: dict | None = None) -> None:
    """Raise 422 Invalid with every cause found, the way kube-apiserver lists them."""
    meta = obj["metadata"]
    causes = objectmeta.name_causes(rt, meta["name"]) if old is None else []
    causes += objectmeta.label_causes(meta)
    if old is None and rt.namespaced and meta.get("namespace"):
        causes += objectmeta.name_causes(registry.lookup_kind("v1", "Namespace"), meta["namespace"],
                                         "metadata.namespace")
    for n, ref in enumerate(meta.get("ownerReferences") or []):
        for field in ("apiVersion", "kind", "name", "uid"):
            if not ref.get(field):
                causes.append(errors.field_cause(
                    f"metadata.ownerReferences[{n}].{field}", "Required value", "FieldValueRequired"))
    if rt.group_kind == CRD_GK:
        causes += crd_causes(obj)
    if not causes:
        causes = _object_causes(obj, rt, registry, old)
    if causes:
        raise errors.invalid(rt.kind, rt.group, meta.get("name", ""), causes)


def _object_causes(obj: dict, rt: ResourceType, registry: ResourceRegistry, old: dict | None) -> list[dict[str, str]]:
    """Schema causes and the built-in rules; where both speak of one field, kube-apiserver's Go validation
    (builtin_validation) has the word, since kube-apiserver does not validate built-ins against OpenAPI."""
    schema = validation.validate_object(obj, registry) + _structural_causes(obj, rt)
    if any(c.get("reason") == "FieldValueTypeInvalid" for c in schema):
        return schema  # a wrong type fails decoding before any rule runs
    builtin = builtin_validation.causes(obj, rt, old)
    covered = {c["field"] for c in builtin}
    return builtin + [c for c in schema if c["field"] not in covered]


def _structural_causes(obj: dict, rt: ResourceType) -> list[dict[str, str]]:
    if rt.group_kind != CRD_GK:
        return []
    causes = []
    for n, ver in enumerate((obj.get("spec") or {}).get("versions") or []):
        schema = ((ver or {}).get("schema") or {}).get("openAPIV3Schema")
        if schema is not None:
            for problem in validation.structural_problems(schema, f"spec.versions[{n}].schema.openAPIV3Schema"):
                field, _, message = problem.partition(": ")
                causes.append(errors.field_cause(field, message))
    return causes


def spec_part(obj: dict) -> dict:
    """Everything a ``generation`` bump looks at (all but metadata, status and the type)."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def crd_causes(crd: dict) -> list[dict[str, str]]:
    """apiextensions' ValidateCustomResourceDefinition, the parts the lab's CRDs can get wrong."""
    spec = crd.get("spec")
    if not isinstance(spec, dict):
        return [errors.field_cause("spec", "Required value", "FieldValueRequired")]
    causes = []
    names = spec.get("names") or {}
    for field in ("plural", "kind"):
        if not names.get(field):
            causes.append(errors.field_cause(f"spec.names.{field}", "Required value", "FieldValueRequired"))
    if not spec.get("group"):
        causes.append(errors.field_cause("spec.group", "Required value", "FieldValueRequired"))
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        causes.append(errors.field_cause(
            "spec.scope", f'Unsupported value: "{spec.get("scope")}": supported values: "Cluster", "Namespaced"',
            "FieldValueNotSupported"))
    causes += _crd_version_causes(spec.get("versions"))
    name = (crd.get("metadata") or {}).get("name")
    if names.get("plural") and spec.get("group") and name != f"{names['plural']}.{spec['group']}":
        causes.append(errors.field_cause(
            "metadata.name", f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group'))
    return causes


def _crd_version_causes(versions: Any) -> list[dict[str, str]]:
    if not isinstance(versions, list) or not versions:
        return [errors.field_cause("spec.versions", "Required value: must have exactly one version marked as "
                                   "storage version", "FieldValueRequired")]
    if sum(1 for v in versions if isinstance(v, dict) and v.get("storage")) != 1:
        return [errors.field_cause("spec.versions", "Invalid value: must have exactly one version marked as "
                                   "storage version")]
    if not all(isinstance(v, dict) and v.get("name") for v in versions):
        return [errors.field_cause("spec.versions[].name", "Required value", "FieldValueRequired")]
    return []


def crd_status(crd: dict, now: str) -> dict:
    """The status apiextensions-apiserver's naming and establishing controllers give a new CRD."""
    names = crd["spec"]["names"]
    accepted = {k: names[k] for k in ("plural", "singular", "shortNames", "kind", "listKind", "categories")
                if k in names}
    accepted.setdefault("singular", names["kind"].lower())
    accepted.setdefault("listKind", names["kind"] + "List")
    return {
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
             "message": "no conflicts found", "lastTransitionTime": now},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted", "lastTransitionTime": now},
        ],
        "acceptedNames": accepted,
        "storedVersions": [v["name"] for v in crd["spec"]["versions"] if v.get("storage")],
    }
