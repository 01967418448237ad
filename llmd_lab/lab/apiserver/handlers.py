"""REST handlers for resource URLs: CRUD, list/watch, status/scale subresources, logs and proxy.

One entry point (:class:`ResourceHandler`) parses the URL into a :class:`~.request.Target`, finds the
resource type, checks the verb, and calls the store. Every failure is an ``ApiError`` rendered as a
``Status``; nothing is written unless the whole request is valid.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import Response

from llmd_lab.lab.apiserver import errors, logs, proxy, reviews, tables, validation
from llmd_lab.lab.apiserver import patch as patching
from llmd_lab.lab.apiserver.access import Access, Attributes, check
from llmd_lab.lab.apiserver.hooks import ApiHooks
from llmd_lab.lab.apiserver.registry import ResourceType
from llmd_lab.lab.apiserver.request import (
    PARTIAL,
    TABLE,
    Target,
    decode_body,
    decode_object,
    dry_run,
    field_validation,
    flag,
    int_param,
    output_mode,
    parse_target,
    read_body,
)
from llmd_lab.lab.apiserver.responses import dumps, json_response, status_response
from llmd_lab.lab.apiserver.store import Store
from llmd_lab.lab.apiserver.streams import StreamCloser
from llmd_lab.lab.apiserver.watch import watch_response
from llmd_lab.sim.keepalive import POD_CLIENT_KEEPALIVE_EXPIRY_S
from llmd_lab.sim.tls import insecure_client_context

log = logging.getLogger(__name__)
NAME_IS_NAMESPACE = {"": ("namespaces",), "project.openshift.io": ("projects",)}
VERB_OF = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


class ResourceHandler:
    def __init__(self, store: Store, hooks: ApiHooks | None, max_body_bytes: int, bookmark_interval: float,
                 access: Access) -> None:
        self.store = store
        self.access = access
        self.hooks = hooks
        self.max_body = max_body_bytes
        self.bookmark_interval = bookmark_interval
        self._http: httpx.AsyncClient | None = None
        self.streams = StreamCloser()  # watches and followed logs end when the server shuts down

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            # kube-apiserver's proxy transport does not verify backends (InsecureSkipVerify), so an
            # ``https:`` pod or Service proxy reaches KServe's SAN-less certificate
            self._http = httpx.AsyncClient(timeout=httpx.Timeout(30.0, read=None), follow_redirects=False,
                                           verify=insecure_client_context(),
                                           limits=httpx.Limits(keepalive_expiry=POD_CLIENT_KEEPALIVE_EXPIRY_S))
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def handle(self, request: Request) -> Response:
        try:
            return await self._dispatch(request)
        except errors.ApiError as exc:
            return status_response(exc)
        except Exception as exc:
            log.exception("internal error serving %s %s", request.method, request.url.path)
            return status_response(errors.ApiError(500, "InternalError", f"Internal error occurred: {exc!r}"))

    # ------------------------------------------------------------------ dispatch
    async def _dispatch(self, request: Request) -> Response:
        target = parse_target(request.url.path)
        rt = self.store.registry.lookup_resource(target.group, target.version, target.plural)
        if target.namespace is not None and not rt.namespaced:
            raise errors.resource_not_found()
        verb = request_verb(request.method, target, request.query_params)
        self._authorize(request, rt, target, verb)
        computed = self.access.computed
        if computed is not None and computed.serves(rt):
            return await computed.handle(request, rt, target, request.state.user)
        if target.subresource is not None:
            return await self._subresource(request, rt, target, verb)
        if target.name is None:
            handler = {"list": self._list, "watch": self._watch, "create": self._create,
                       "deletecollection": self._delete_collection}.get(verb)
            if handler is None:
                raise errors.method_not_allowed()
            self._verb(rt, "list" if verb == "watch" else verb)
            if verb == "watch":
                self._verb(rt, "watch")
            return await handler(request, rt, target)
        handler = {"get": self._get, "update": self._update, "patch": self._patch, "delete": self._delete}.get(verb)
        if handler is None:
            raise errors.method_not_allowed()
        self._verb(rt, verb)
        self._needs_namespace(rt, target)
        return await handler(request, rt, target)

    async def _subresource(self, request: Request, rt: ResourceType, target: Target, verb: str) -> Response:
        sub = target.subresource
        if target.name is None or sub is None or not rt.has(sub):
            raise errors.resource_not_found()
        self._needs_namespace(rt, target)
        if sub == "proxy":
            return await self._proxy(request, rt, target)
        if sub == "log":
            if verb != "get":
                raise errors.method_not_allowed()
            pod = await self.store.get(rt.api_version, rt.kind, target.name, target.namespace, copy=False)
            return await logs.logs_response(pod, self.hooks, request.query_params, self.streams)
        if sub not in ("status", "scale"):
            raise errors.resource_not_found()
        if verb == "get" and sub == "scale":
            return json_response(await self.store.get_scale(rt.api_version, rt.kind, target.name, target.namespace))
        if verb == "get":
            return json_response(await self.store.get(rt.api_version, rt.kind, target.name, target.namespace,
                                                      copy=False))
        if verb == "update":
            return await self._update(request, rt, target, sub)
        if verb == "patch":
            return await self._patch(request, rt, target, sub)
        raise errors.method_not_allowed()

    @staticmethod
    def _verb(rt: ResourceType, verb: str) -> None:
        if verb not in rt.verbs:
            raise errors.method_not_allowed(
                f"the server does not allow this method on the requested resource ({rt.plural} supports: "
                f"{', '.join(rt.verbs)})"
            )

    def _exists(self, rt: ResourceType, name: str, namespace: str | None) -> bool:
        return self.store.storage.find(self.store.key(rt, name, namespace)) is not None

    def _authorize(self, request: Request, rt: ResourceType, target: Target, verb: str) -> None:
        """Ask the authorizer (access.py) before any verb runs, with kube-apiserver's request attributes."""
        name = target.name or _selected_name(request.query_params.get("fieldSelector"), verb)
        if target.subresource == "proxy":
            name = proxy.split_name(name)[1]
        namespace = target.namespace or ""
        if rt.plural in NAME_IS_NAMESPACE.get(rt.group, ()) and name:
            namespace = name  # requestinfo.go: /namespaces/{name}[/status]; OpenShift does the same for projects
        check(self.access.authorizer, Attributes(
            request.state.user, verb, rt.group, rt.plural, target.subresource or "", namespace, name))

    @staticmethod
    def _needs_namespace(rt: ResourceType, target: Target) -> None:
        if rt.namespaced and target.namespace is None:
            raise errors.resource_not_found()

    # ------------------------------------------------------------------ read
    async def _list(self, request: Request, rt: ResourceType, target: Target) -> Response:
        q = request.query_params
        items, meta = await self.store.list(
            rt.api_version, rt.kind, target.namespace, q.get("labelSelector"), q.get("fieldSelector"),
            limit=int_param(q, "limit"), continue_token=q.get("continue") or None, copy=False,
            resource_version=q.get("resourceVersion"), resource_version_match=q.get("resourceVersionMatch"),
        )
        mode, _ = output_mode(request.headers.get("accept", ""))
        if mode == TABLE:
            return json_response(tables.table(rt, items, meta["resourceVersion"], q.get("includeObject") or "Metadata",
                                              meta.get("continue")))
        if mode == PARTIAL:
            return json_response({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
                                  "metadata": meta, "items": [_partial(o) for o in items]})
        head = dumps({"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": meta})[:-1]
        body = head + b',"items":[' + ",".join(self.store.encoded(o) for o in items).encode() + b"]}"
        return Response(body, media_type="application/json")

    async def _get(self, request: Request, rt: ResourceType, target: Target) -> Response:
        assert target.name is not None
        obj = await self.store.get(rt.api_version, rt.kind, target.name, target.namespace, copy=False)
        return self._render(request, rt, obj)

    def _render(self, request: Request, rt: ResourceType, obj: dict, status: int = 200,
                warnings: list[str] | None = None) -> Response:
        mode, _ = output_mode(request.headers.get("accept", ""))
        if mode == TABLE and not rt.virtual:
            include = request.query_params.get("includeObject") or "Metadata"
            return json_response(tables.table(rt, [obj], obj["metadata"].get("resourceVersion", ""), include),
                                 status, warnings)
        if mode == PARTIAL:
            return json_response(_partial(obj), status, warnings)
        if warnings:
            return json_response(obj, status, warnings)
        return Response(self.store.encoded(obj).encode(), status_code=status, media_type="application/json")

    async def _watch(self, request: Request, rt: ResourceType, target: Target) -> Response:
        q = request.query_params
        mode, _ = output_mode(request.headers.get("accept", ""))
        transform = None
        if mode == TABLE:
            include = q.get("includeObject") or "Metadata"

            def transform(obj: dict) -> dict:
                return tables.table(rt, [obj], obj["metadata"].get("resourceVersion", ""), include)
        elif mode == PARTIAL:
            transform = _partial
        timeout = int_param(q, "timeoutSeconds")
        return watch_response(self.store, rt, target.namespace, q, timeout_s=timeout,
                              bookmark_interval=self.bookmark_interval, transform=transform, streams=self.streams)

    # ------------------------------------------------------------------ write
    async def _body_object(self, request: Request, rt: ResourceType, target: Target) -> tuple[dict, list[str]]:
        """The body's object and the keys it repeated."""
        body = decode_body(await read_body(request, self.max_body), request.headers.get("content-type", ""),
                           rt.group, rt.kind)
        if not isinstance(body.object, dict):
            raise errors.bad_request(
                f"the request body must be one object (a JSON/YAML mapping), not {type(body.object).__name__}")
        return body.object, body.duplicates

    def _check_identity(self, obj: dict, rt: ResourceType, target: Target, *, sub: str | None = None) -> list[str]:
        """URL vs body: apiVersion/kind, namespace and name must agree; returns field-validation warnings."""
        want_kind, want_version = (("Scale", "autoscaling/v1") if sub == "scale" else (rt.kind, rt.api_version))
        # kube-apiserver decodes built-in kinds with the URL's group/version/kind as defaults; the
        # unstructured decoder of custom resources does not (a body without them is a 400)
        if not rt.crd or sub == "scale":
            obj.setdefault("apiVersion", want_version)
            obj.setdefault("kind", want_kind)
        for field, example in (("kind", want_kind), ("apiVersion", want_version)):
            if not obj.get(field):
                raise errors.bad_request(f"Object '{'Kind' if field == 'kind' else field}' is missing in the "
                                         f"request body (set {field}: {example})")
        if obj.get("kind") != want_kind:
            raise errors.bad_request(
                f'the kind in the body ({obj.get("kind")}) does not match the resource in the URL '
                f"({rt.plural} holds {want_kind})"
            )
        if obj.get("apiVersion") != want_version:
            raise errors.bad_request(
                f'the API version in the body ({obj.get("apiVersion")}) does not match the URL\'s API version '
                f"({want_version}); send {want_kind} as apiVersion {want_version}"
            )
        meta = obj.get("metadata")
        if meta is None:
            meta = obj["metadata"] = {}
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object (ObjectMeta)")
        if rt.namespaced and sub != "scale":
            ns = meta.get("namespace")
            if ns and ns != target.namespace:
                raise errors.bad_request(
                    f"the namespace of the provided object ({ns}) does not match the namespace sent on the "
                    f"request ({target.namespace})"
                )
            meta["namespace"] = target.namespace
        if target.name is not None and meta.get("name") and meta["name"] != target.name:
            raise errors.bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL ({target.name})"
            )
        if target.name is not None and not meta.get("name"):
            meta["name"] = target.name
        return []

    def _field_warnings(self, request: Request, obj: dict, duplicates: list[str]) -> list[str]:
        """``fieldValidation``: repeated and unknown fields are warnings (Warn), a 400 (Strict) or nothing."""
        mode = field_validation(request.query_params)
        if mode == "Ignore":
            return []
        problems = [f'duplicate field "{d}"' for d in duplicates]
        problems += [f'unknown field "{u}"' for u in validation.unknown_fields(obj, self.store.registry)]
        if problems and mode == "Strict":
            raise errors.bad_request(validation.strict_error_message(obj, problems))
        return problems

    async def _create(self, request: Request, rt: ResourceType, target: Target) -> Response:
        if rt.namespaced and target.namespace is None and not rt.virtual:
            raise errors.resource_not_found()
        obj, duplicates = await self._body_object(request, rt, target)
        self._check_identity(obj, rt, target)
        warnings = self._field_warnings(request, obj, duplicates)
        if rt.virtual:
            return self._render(request, rt, reviews.answer(obj, request.state.user, self.access), 201)
        self._check_write(request, obj)
        created = await self.store.create(obj, dry_run=dry_run(request.query_params), copy=False)
        return self._render(request, rt, created, 201, warnings)

    def _check_write(self, request: Request, obj: dict) -> None:
        if self.access.check_write is not None:
            self.access.check_write(request.state.user, obj)

    async def _update(self, request: Request, rt: ResourceType, target: Target, sub: str | None = None) -> Response:
        obj, duplicates = await self._body_object(request, rt, target)
        self._check_identity(obj, rt, target, sub=sub)
        dry = dry_run(request.query_params)
        assert target.name is not None
        if sub == "scale":
            return json_response(await self.store.update_scale(rt.api_version, rt.kind, target.name, target.namespace,
                                                               obj, dry_run=dry))
        warnings = self._field_warnings(request, obj, duplicates)
        obj = {**obj, "apiVersion": rt.api_version}
        if sub is None:
            self._check_write(request, obj)
        if sub == "status":
            updated = await self.store.update_status(obj, dry_run=dry, copy=False)
        else:
            updated = await self.store.update(obj, dry_run=dry, copy=False)
        return self._render(request, rt, updated, 200, warnings)

    async def _patch(self, request: Request, rt: ResourceType, target: Target, sub: str | None = None) -> Response:
        assert target.name is not None
        content_type = request.headers.get("content-type", "")
        patch_type = patching.normalize_type(content_type) if content_type else None
        if patch_type is None:
            raise errors.unsupported_media_type("", list(patching.PATCH_TYPES))
        body = await read_body(request, self.max_body)
        if not body.strip():
            raise errors.bad_request("the patch body is empty")
        decoded = patching.parse_body(body, patch_type)
        warnings: list[str] = []
        if patch_type == patching.APPLY and sub is None:
            warnings = self._field_warnings(request, decoded, [])
        existed = self._exists(rt, target.name, target.namespace)
        if sub is None and self.access.check_write is not None:  # judge the patched object before storing it
            self._check_write(request, await self.store.patch(
                rt.api_version, rt.kind, target.name, target.namespace, decoded, patch_type, sub, dry_run=True,
                field_manager=request.query_params.get("fieldManager")))
        result = await self.store.patch(
            rt.api_version, rt.kind, target.name, target.namespace, decoded, patch_type, sub,
            dry_run=dry_run(request.query_params), field_manager=request.query_params.get("fieldManager"), copy=False,
        )
        if sub == "scale":
            return json_response(result)
        return self._render(request, rt, result, 200 if existed else 201, warnings)

    async def _delete_options(self, request: Request) -> dict[str, Any]:
        body = await read_body(request, self.max_body)
        options: dict[str, Any] = {}
        if body.strip():
            decoded = decode_object(body, request.headers.get("content-type", "application/json"), "", "DeleteOptions")
            if not isinstance(decoded, dict):
                raise errors.bad_request("the DELETE body must be a DeleteOptions object")
            options = decoded
        q = request.query_params
        propagation = q.get("propagationPolicy") or options.get("propagationPolicy")
        orphan = q.get("orphanDependents") or options.get("orphanDependents")
        if propagation is None and orphan is not None:
            propagation = "Orphan" if str(orphan).lower() == "true" else "Background"
        grace = int_param(q, "gracePeriodSeconds")
        if grace is None and options.get("gracePeriodSeconds") is not None:
            grace = options["gracePeriodSeconds"]
            if not isinstance(grace, int) or grace < 0:
                raise errors.bad_request("gracePeriodSeconds must be a non-negative integer")
        dry = dry_run(q) or bool(options.get("dryRun"))
        if options.get("dryRun") and options["dryRun"] != ["All"]:
            raise errors.bad_request('invalid dryRun value: the only supported value is ["All"]')
        return {"propagation": propagation, "grace_period_seconds": grace, "dry_run": dry,
                "preconditions": options.get("preconditions")}

    async def _delete(self, request: Request, rt: ResourceType, target: Target) -> Response:
        assert target.name is not None
        options = await self._delete_options(request)
        result = await self.store.delete(rt.api_version, rt.kind, target.name, target.namespace, copy=False, **options)
        still_there = self._exists(rt, target.name, target.namespace)
        return json_response(result, 202 if still_there and not options["dry_run"] else 200)

    async def _delete_collection(self, request: Request, rt: ResourceType, target: Target) -> Response:
        if rt.namespaced and target.namespace is None:
            raise errors.resource_not_found()
        options = await self._delete_options(request)
        q = request.query_params
        items, _ = await self.store.list(rt.api_version, rt.kind, target.namespace, q.get("labelSelector"),
                                         q.get("fieldSelector"), copy=False)
        deleted = []
        for obj in list(items):
            meta = obj["metadata"]
            try:
                deleted.append(await self.store.delete(rt.api_version, rt.kind, meta["name"], meta.get("namespace"),
                                                       copy=False, **options))
            except errors.ApiError as exc:
                if exc.code != 404:
                    raise
        return json_response({"kind": rt.list_kind, "apiVersion": rt.api_version,
                              "metadata": {"resourceVersion": self.store.resource_version}, "items": deleted})

    # ------------------------------------------------------------------ proxy
    async def _proxy(self, request: Request, rt: ResourceType, target: Target) -> Response:
        assert target.name is not None
        scheme, name, port = proxy.split_name(target.name)
        scheme = proxy.checked_scheme(scheme)
        obj = await self.store.get(rt.api_version, rt.kind, name, target.namespace, copy=False)
        host, number = await proxy.address_of(rt.kind, obj, port, self.hooks)
        return await proxy.forward(request, self.http, host, number, target.rest, scheme=scheme)


def request_verb(method: str, target: Target, query: Any) -> str:
    """kube-apiserver's RequestInfo verb: list/watch/deletecollection on collections, else by HTTP method."""
    if target.name is None and target.subresource is None:
        if method == "GET":
            return "watch" if flag(query.get("watch")) else "list"
        if method == "DELETE":
            return "deletecollection"
    if method == "POST" and target.name is not None and target.subresource is None:
        return "post-to-object"  # nothing serves it: 405 after authorization, as kube-apiserver answers
    return VERB_OF.get(method, method.lower())


def _selected_name(field_selector: str | None, verb: str) -> str:
    """requestinfo.go: a list/watch whose fieldSelector requires ``metadata.name=X`` is authorized for name X."""
    if verb not in ("list", "watch") or not field_selector:
        return ""
    names = [v for k, _, v in (term.replace("==", "=").partition("=") for term in field_selector.split(","))
             if k.strip() == "metadata.name" and "!" not in k]
    return names[0].strip() if len(names) == 1 and "/" not in names[0] else ""


def _partial(obj: dict) -> dict:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}
