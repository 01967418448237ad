"""The patch verbs (JSON, merge, strategic merge, server-side apply) and the scale subresource.

Each computes the whole new object and hands it to :meth:`RestVerbs.write_update` (or, for an apply that
creates, :meth:`RestVerbs.write_create`), so a patch goes through exactly the checks an update does.
"""

from __future__ import annotations

from typing import Any

from llmd_lab.lab.apiserver import errors, objectmeta
from llmd_lab.lab.apiserver import patch as patching
from llmd_lab.lab.apiserver import selectors as sel
from llmd_lab.lab.apiserver.bus import clone
from llmd_lab.lab.apiserver.registry import ResourceType
from llmd_lab.lab.apiserver.rest import RestVerbs
from llmd_lab.lab.apiserver.watchstream import present

INT32_MAX = 2**31 - 1


def patch_object(verbs: RestVerbs, rt: ResourceType, name: str, namespace: str | None, patch: Any,
                 patch_type: str, subresource: str | None, *, dry_run: bool, field_manager: str | None) -> dict:
    """Apply one patch; returns the stored object (the Scale for ``subresource="scale"``)."""
    kind_type = patching.normalize_type(patch_type)
    body = patching.parse_body(patch, kind_type)
    if kind_type == patching.STRATEGIC and rt.crd:
        raise errors.unsupported_media_type(
            patch_type + " (strategic merge patch is not supported for custom resources; use merge or json)",
            [patching.JSON, patching.MERGE, patching.APPLY],
        )
    if subresource == "scale":
        scale = scale_of(rt, verbs.stored(rt, name, namespace))
        if kind_type == patching.APPLY:
            new_scale = patching.apply_patch(scale, body, field_manager or "unknown", "autoscaling/v1")
        else:
            new_scale = patching.apply(scale, body, kind_type)
        return write_scale(verbs, rt, name, namespace, new_scale, dry_run=dry_run)
    if subresource not in (None, "status"):
        raise errors.resource_not_found()
    current = verbs.storage.find(verbs.key(rt, name, namespace))
    if kind_type == patching.APPLY:
        _check_apply(rt, name, body, field_manager)
        if current is None:
            if subresource:
                raise errors.not_found(rt.plural, rt.group, name)
            created = patching.apply_patch(None, body, field_manager or "", rt.api_version)
            created["metadata"]["name"] = name
            if rt.namespaced:
                created["metadata"]["namespace"] = namespace
            return present(verbs.write_create(created, dry_run=dry_run), rt)
        new = patching.apply_patch(current, body, field_manager or "", rt.api_version)
    else:
        if current is None:
            raise errors.not_found(rt.plural, rt.group, name)
        new = patching.apply(current, body, kind_type)
    _check_patched(new, current)
    new["metadata"]["resourceVersion"] = _patched_rv(body, kind_type) or current["metadata"]["resourceVersion"]
    return verbs.write_update(new, subresource=subresource, dry_run=dry_run)


def _check_apply(rt: ResourceType, name: str, body: Any, field_manager: str | None) -> None:
    if not field_manager:
        raise errors.bad_request("fieldManager is required for apply patches (e.g. ?fieldManager=my-tool)")
    objectmeta.check_shape(body)
    if body.get("kind") != rt.kind or body.get("apiVersion") != rt.api_version:
        raise errors.bad_request(
            f"the apply patch is a {body.get('kind')} {body.get('apiVersion')} but the URL names "
            f"{rt.kind} {rt.api_version}"
        )
    if (body.get("metadata") or {}).get("name", name) != name:
        raise errors.bad_request("the name in the apply patch does not match the name in the URL")


def _check_patched(new: dict, current: dict) -> None:
    if not isinstance(new.get("metadata"), dict):
        raise errors.ApiError(422, "Invalid", "the patch removed metadata; objects must keep it")
    meta, cur_meta = new["metadata"], current["metadata"]
    if meta.get("name") != cur_meta["name"] or meta.get("namespace") != cur_meta.get("namespace"):
        raise errors.bad_request("metadata.name and metadata.namespace cannot be changed by a patch")
    new["kind"], new["apiVersion"] = current["kind"], current["apiVersion"]


def _patched_rv(body: Any, patch_type: str) -> str | None:
    if patch_type == patching.JSON:
        for op in body:
            if isinstance(op, dict) and op.get("path") == "/metadata/resourceVersion" and op.get("op") in ("add", "replace"):
                return str(op.get("value"))
        return None
    meta = body.get("metadata") if isinstance(body, dict) else None
    rv = meta.get("resourceVersion") if isinstance(meta, dict) else None
    return str(rv) if rv else None


# ---------------------------------------------------------------------- scale
def scale_of(rt: ResourceType, obj: dict) -> dict:
    """The ``autoscaling/v1`` Scale view of an object whose kind has the scale subresource."""
    if not rt.has("scale") or not rt.scale:
        raise errors.resource_not_found()
    spec_replicas = _get_path(obj, rt.scale["specReplicasPath"])
    status_replicas = _get_path(obj, rt.scale["statusReplicasPath"])
    if rt.crd:
        selector = _get_path(obj, rt.scale["labelSelectorPath"]) if rt.scale.get("labelSelectorPath") else None
    else:
        selector = sel.format_selector((obj.get("spec") or {}).get("selector"))
    meta = obj["metadata"]
    scale: dict[str, Any] = {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                     if k in meta},
        "spec": {"replicas": int(spec_replicas or 0)} if spec_replicas is not None else {},
        "status": {"replicas": int(status_replicas or 0)},
    }
    if selector:
        scale["status"]["selector"] = selector
    return scale


def write_scale(verbs: RestVerbs, rt: ResourceType, name: str, namespace: str | None, scale: dict, *,
                dry_run: bool = False) -> dict:
    """PUT .../scale: set the replicas path of the object (kube's ValidateScale rules), return the Scale."""
    current = verbs.stored(rt, name, namespace)
    scale_of(rt, current)
    replicas = (scale.get("spec") or {}).get("replicas")
    if not isinstance(replicas, int) or isinstance(replicas, bool):
        raise errors.invalid("Scale", "autoscaling", name, [errors.field_cause(
            "spec.replicas", f"Invalid value: {replicas!r}: must be an integer")])
    if replicas < 0:
        raise errors.invalid("Scale", "autoscaling", name, [errors.field_cause(
            "spec.replicas", f"Invalid value: {replicas}: must be greater than or equal to 0")])
    if replicas > INT32_MAX:
        raise errors.bad_request(f"Scale in version \"v1\" cannot be handled as a Scale: json: cannot unmarshal "
                                 f"number {replicas} into Go struct field ScaleSpec.spec.replicas of type int32")
    rv = (scale.get("metadata") or {}).get("resourceVersion")
    if rv and rv != current["metadata"]["resourceVersion"]:
        raise errors.conflict(rt.plural, rt.group, name)
    new = clone(current)
    assert rt.scale is not None
    _set_path(new, rt.scale["specReplicasPath"], replicas)
    return scale_of(rt, verbs.write_update(new, dry_run=dry_run, admit_as="scale"))


def _split_path(path: str) -> list[str]:
    return [p for p in path.strip().lstrip(".").split(".") if p]


def _get_path(obj: dict, path: str) -> Any:
    cur: Any = obj
    for part in _split_path(path):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _set_path(obj: dict, path: str, value: Any) -> None:
    parts = _split_path(path)
    cur = obj
    for part in parts[:-1]:
        cur = cur.setdefault(part, {})
    cur[parts[-1]] = value
