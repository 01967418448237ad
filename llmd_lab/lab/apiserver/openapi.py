"""OpenAPI v3 documents, shaped as kube-apiserver serves them at ``/openapi/v3`` and ``/openapi/v3/<gv>``.

kubectl 1.32 reads them for three things: ``kubectl explain`` (schemas found by their
``x-kubernetes-group-version-kind``), server-side field validation (``kubectl apply --validate=strict``
sends ``fieldValidation=Strict`` only if the PATCH operation of the kind lists that query parameter) and
strategic-merge patch metadata (``x-kubernetes-patch-merge-key``). Built-in schemas come from the
Kubernetes 1.32 definitions shipped by ``kubernetes-validate``; custom resources from their CRD, named as
kube-apiserver names them (``serving.kserve.io`` → ``io.kserve.serving.v1alpha1.LLMInferenceService``).
"""

from __future__ import annotations

import copy
import hashlib
import json
import weakref
from typing import Any

from llmd_lab.lab.apiserver.registry import ResourceRegistry, ResourceType
from llmd_lab.lab.apiserver.validation import KUBERNETES_VERSION, builtin_definition_name, builtin_definitions

META = "io.k8s.apimachinery.pkg.apis.meta.v1."
_REF_PREFIX = "#/components/schemas/"
_ALWAYS = [META + "Status", META + "DeleteOptions", META + "Patch", META + "ObjectMeta", META + "ListMeta"]
# kubernetes-validate loosens these for JSON Schema; kube-apiserver publishes them as strings with a format
_REAL_SHAPES = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {
        "description": "IntOrString is a type that can hold an int32 or a string.",
        "type": "string", "format": "int-or-string"},
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {
        "description": "Quantity is a fixed-point representation of a number, e.g. 100m, 1Gi, 2.",
        "type": "string"},
}
_PATCH_TYPES_BUILTIN = ["application/apply-patch+yaml", "application/json-patch+json",
                        "application/merge-patch+json", "application/strategic-merge-patch+json"]
_PATCH_TYPES_CRD = _PATCH_TYPES_BUILTIN[:3]
# per registry: (generation, group, version) → document; rebuilt when a CRD changes the registry
_cache: weakref.WeakKeyDictionary[ResourceRegistry, dict[tuple[int, str, str], dict[str, Any]]] = (
    weakref.WeakKeyDictionary()
)


def gv_path(group: str, version: str) -> str:
    """``api/v1`` for the core group, ``apis/<group>/<version>`` otherwise."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


def crd_schema_name(group: str, version: str, kind: str) -> str:
    """kube-apiserver's name for a CRD schema: the group reversed, then version and kind."""
    return ".".join([*reversed(group.split(".")), version, kind])


def schema_name(rt: ResourceType) -> str | None:
    if rt.crd:
        return crd_schema_name(rt.group, rt.version, rt.kind)
    return builtin_definition_name(rt.group, rt.version, rt.kind)


# ------------------------------------------------------------------------------------------------ schemas
def _to_openapi(node: Any) -> Any:
    """kubernetes-validate's JSON Schema back to OpenAPI 3.0: single types, component refs, no enums on kind."""
    if isinstance(node, list):
        return [_to_openapi(n) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$ref":
            out[key] = _REF_PREFIX + value.rsplit("/", 1)[-1]
        elif key == "type" and isinstance(value, list):
            types = [t for t in value if t != "null"]
            out[key] = types[0] if len(types) == 1 else types
        elif key == "properties":
            out[key] = {}
            for name, sub in value.items():
                sub = _to_openapi(sub)
                if name in ("apiVersion", "kind"):
                    sub.pop("enum", None)
                if "$ref" in sub and len(sub) > 1:  # a described reference: kube-apiserver wraps it in allOf
                    ref = sub.pop("$ref")
                    sub = {"allOf": [{"$ref": ref}], **sub}
                out[key][name] = sub
        else:
            out[key] = _to_openapi(value)
    return out


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF_PREFIX):
            found.add(ref[len(_REF_PREFIX):])
        for value in node.values():
            _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


def _builtin_schema(name: str) -> dict[str, Any]:
    if name in _REAL_SHAPES:
        return copy.deepcopy(_REAL_SHAPES[name])
    return _to_openapi(builtin_definitions()[name])


def _with_builtins(schemas: dict[str, Any], names: list[str]) -> None:
    """Add ``names`` and everything they reference (transitively) to ``schemas``."""
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in schemas or name not in builtin_definitions():
            continue
        schemas[name] = _builtin_schema(name)
        found: set[str] = set()
        _refs(schemas[name], found)
        todo.extend(sorted(found - schemas.keys()))


def _crd_schemas(rt: ResourceType) -> dict[str, Any]:
    name = crd_schema_name(rt.group, rt.version, rt.kind)
    schema = copy.deepcopy(rt.schema or {"type": "object", "x-kubernetes-preserve-unknown-fields": True})
    props = schema.setdefault("properties", {})
    props["apiVersion"] = {"type": "string", "description": "APIVersion defines the versioned schema of this "
                           "representation of an object."}
    props["kind"] = {"type": "string", "description": "Kind is a string value representing the REST resource "
                     "this object represents."}
    props["metadata"] = {"allOf": [{"$ref": _REF_PREFIX + META + "ObjectMeta"}],
                         "description": "Standard object's metadata. More info: "
                         "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"}
    schema.setdefault("type", "object")
    schema["x-kubernetes-group-version-kind"] = [{"group": rt.group, "kind": rt.kind, "version": rt.version}]
    listed = {
        "description": f"{rt.kind}List is a list of {rt.kind}",
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": props["apiVersion"],
            "items": {"type": "array", "items": {"$ref": _REF_PREFIX + name},
                      "description": f"List of {rt.plural.lower()}. More info: "
                      "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md"},
            "kind": props["kind"],
            "metadata": {"allOf": [{"$ref": _REF_PREFIX + META + "ListMeta"}], "description": "Standard list metadata."},
        },
        "x-kubernetes-group-version-kind": [{"group": rt.group, "kind": rt.list_kind, "version": rt.version}],
    }
    return {name: schema, name + "List": listed}


# ------------------------------------------------------------------------------------------------ paths
def _param(name: str, description: str, where: str = "query", required: bool = False) -> dict[str, Any]:
    param = {"name": name, "in": where, "description": description, "schema": {"type": "string", "uniqueItems": True}}
    if required:
        param["required"] = True
    return param


_DRY_RUN = _param("dryRun", "When present, modifications are not persisted (All).")
_FIELD_MANAGER = _param("fieldManager", "A name associated with the actor or entity that is making these changes.")
_FIELD_VALIDATION = _param(
    "fieldValidation",
    "How the server handles unknown or duplicate fields: Ignore, Warn (the default) or Strict, which fails the "
    "request with BadRequest naming each unknown field.",
)
_FORCE = {"name": "force", "in": "query", "description": "Force is going to \"force\" Apply requests.",
          "schema": {"type": "boolean", "uniqueItems": True}}
_PRETTY = _param("pretty", "If 'true', then the output is pretty printed.")


def _json(ref: str) -> dict[str, Any]:
    schema = {"$ref": _REF_PREFIX + ref}
    return {"application/json": {"schema": schema}, "application/yaml": {"schema": schema}}


def _op(rt: ResourceType, action: str, verb: str, scope: str, body: str, *, response: str | None = None,
        patch_types: list[str] | None = None, params: list[dict] | None = None, sub: str = "") -> dict[str, Any]:
    title = rt.kind + (sub.title() if sub else "")
    op: dict[str, Any] = {
        "operationId": f"{verb}{scope}{title}",
        "tags": [rt.group.replace(".", "_") + "_" + rt.version if rt.group else "core_v1"],
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
        "parameters": list(params or []),
        "responses": {"200": {"description": "OK", "content": _json(response or body)},
                      "401": {"description": "Unauthorized"}},
    }
    if patch_types:
        op["requestBody"] = {"required": True,
                             "content": {t: {"schema": {"$ref": _REF_PREFIX + META + "Patch"}} for t in patch_types}}
    elif action in ("post", "put"):
        op["requestBody"] = {"required": True, "content": {"*/*": {"schema": {"$ref": _REF_PREFIX + body}}}}
        if action == "post":
            op["responses"]["201"] = {"description": "Created", "content": _json(body)}
            op["responses"]["202"] = {"description": "Accepted", "content": _json(body)}
    return op


def _resource_paths(rt: ResourceType, name: str) -> dict[str, Any]:
    base = "/" + gv_path(rt.group, rt.version)
    scope = "Namespaced" if rt.namespaced else ""
    collection = f"{base}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced else f"{base}/{rt.plural}"
    item = collection + "/{name}"
    path_params = [_param("name", f"name of the {rt.kind}", "path", True)]
    ns_params = [_param("namespace", "object name and auth scope, such as for teams and projects", "path", True)]
    scoped = ns_params if rt.namespaced else []
    writes = [_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION]
    patch_types = _PATCH_TYPES_CRD if rt.crd else _PATCH_TYPES_BUILTIN
    verbs = set(rt.verbs)
    paths: dict[str, Any] = {}
    coll: dict[str, Any] = {"parameters": [*scoped, _PRETTY]}
    if "list" in verbs:
        coll["get"] = _op(rt, "list", "list", scope, name + "List")
    if "create" in verbs:
        coll["post"] = _op(rt, "post", "create", scope, name, params=writes)
    if "deletecollection" in verbs:
        coll["delete"] = _op(rt, "deletecollection", "deletecollection", scope, META + "Status",
                             params=[_DRY_RUN])
    paths[collection] = coll
    if rt.virtual:
        return paths
    one: dict[str, Any] = {"parameters": [*path_params, *scoped, _PRETTY]}
    if "get" in verbs:
        one["get"] = _op(rt, "get", "read", scope, name)
    if "update" in verbs:
        one["put"] = _op(rt, "put", "replace", scope, name, params=writes)
    if "patch" in verbs:
        one["patch"] = _op(rt, "patch", "patch", scope, name, patch_types=patch_types, params=[*writes, _FORCE])
    if "delete" in verbs:
        one["delete"] = _op(rt, "delete", "delete", scope, META + "Status", params=[_DRY_RUN])
    paths[item] = one
    if rt.has("status"):
        paths[item + "/status"] = {
            "parameters": [*path_params, *scoped, _PRETTY],
            "get": _op(rt, "get", "read", scope, name, sub="status"),
            "put": _op(rt, "put", "replace", scope, name, params=writes, sub="status"),
            "patch": _op(rt, "patch", "patch", scope, name, patch_types=patch_types, params=[*writes, _FORCE],
                         sub="status"),
        }
    if rt.has("scale"):
        scale = "io.k8s.api.autoscaling.v1.Scale"
        paths[item + "/scale"] = {
            "parameters": [*path_params, *scoped, _PRETTY],
            "get": _op(rt, "get", "read", scope, scale, sub="scale"),
            "put": _op(rt, "put", "replace", scope, scale, params=writes, sub="scale"),
            "patch": _op(rt, "patch", "patch", scope, scale, response=scale, patch_types=patch_types,
                         params=[*writes, _FORCE], sub="scale"),
        }
    if rt.namespaced and "list" in verbs:
        paths[f"{base}/{rt.plural}"] = {"parameters": [_PRETTY],
                                        "get": _op(rt, "list", "list", "ForAllNamespaces", name + "List")}
    return paths


# ------------------------------------------------------------------------------------------------ documents
def openapi_v3_document(registry: ResourceRegistry, group: str, version: str) -> dict[str, Any]:
    """The ``/openapi/v3/<api|apis/group>/<version>`` document; ``KeyError`` when the group version is not served."""
    key = (registry.generation, group, version)
    per_registry = _cache.setdefault(registry, {})
    cached = per_registry.get(key)
    if cached is not None:
        return cached
    types = registry.resources_in(group, version)
    if not types:
        raise KeyError(gv_path(group, version))
    schemas: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    builtin_names: list[str] = list(_ALWAYS)
    for rt in types:
        name = schema_name(rt)
        if name is None:
            continue
        if rt.crd:
            schemas.update(_crd_schemas(rt))
        else:
            builtin_names += [name, name + "List"]
        if rt.has("scale"):
            builtin_names.append("io.k8s.api.autoscaling.v1.Scale")
        paths.update(_resource_paths(rt, name))
    _with_builtins(schemas, builtin_names)
    found: set[str] = set()
    _refs(schemas, found)
    _with_builtins(schemas, sorted(found - schemas.keys()))
    doc = {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": f"v{KUBERNETES_VERSION}"},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {"BearerToken": {"type": "apiKey", "description": "Bearer Token authentication",
                                                "name": "authorization", "in": "header"}},
        },
    }
    if any(k[0] != registry.generation for k in per_registry):
        per_registry.clear()  # documents of an older generation are never asked for again
    per_registry[key] = doc
    return doc


def document_hash(doc: dict[str, Any]) -> str:
    """An uppercase SHA-512 of the document, like the ``?hash=`` kube-apiserver puts in its index URLs."""
    return hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest().upper()


def openapi_v3_index(registry: ResourceRegistry) -> dict[str, Any]:
    """The ``/openapi/v3`` discovery document: one ``serverRelativeURL`` per served group version."""
    paths: dict[str, Any] = {}
    for group, versions in registry.groups():
        for version in versions:
            if not registry.resources_in(group, version):
                continue
            path = gv_path(group, version)
            digest = document_hash(openapi_v3_document(registry, group, version))
            paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
    return {"paths": dict(sorted(paths.items()))}


def parse_gv_path(path: str) -> tuple[str, str]:
    """``api/v1`` → ``("", "v1")``; ``apis/apps/v1`` → ``("apps", "v1")``; ``KeyError`` otherwise."""
    parts = path.strip("/").split("/")
    if len(parts) == 2 and parts[0] == "api":
        return "", parts[1]
    if len(parts) == 3 and parts[0] == "apis":
        return parts[1], parts[2]
    raise KeyError(path)


# ------------------------------------------------------------------------------------------------ OpenAPI v2
# kubectl asks with Accept "...spec.v2@v1.0+protobuf"; kube-openapi answers with this content type
V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"


def _pb_field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field (wire type 2)."""
    out = bytearray()
    for value in ((number << 3) | 2, len(payload)):
        while True:
            byte = value & 0x7F
            value >>= 7
            out.append(byte | (0x80 if value else 0))
            if not value:
                break
    return bytes(out) + payload


def openapi_v2_protobuf(registry: ResourceRegistry) -> bytes:
    """A minimal ``/openapi/v2`` in the gnostic protobuf form kubectl asks for (swagger 2.0, no definitions).

    kubectl 1.32 consults v2 only for kinds the v3 index does not serve (e.g. a CRD that is not installed):
    with an empty v2 it skips client-side validation, and the REST mapping then fails as on a cluster with
    ``no matches for kind "X" in version "g/v"`` / ``ensure CRDs are installed first``. Every served kind is
    validated server-side through v3. ``registry`` is unused: the document is the same for any lab.
    """
    del registry
    info = _pb_field(1, b"Kubernetes")  # Info.title
    return _pb_field(1, b"2.0") + _pb_field(2, info)  # Document.swagger, Document.info
