"""The API server as a Starlette app: ``create_app(store, token=...)``.

Discovery, OpenAPI and version answers are the stateless scaffold; resource URLs go to
:class:`~.handlers.ResourceHandler` over the store. Authentication wraps everything except the health
endpoints, and every request is authorized (access.py) before it is served; ``access`` is chosen by
:func:`~.access.default_access` unless the caller passes one. Run it with uvicorn on 127.0.0.1 (the lab process does; tests use a background thread), and
call ``app.state.streams.close()`` before shutting uvicorn down so open watches and log streams end.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from llmd_lab.lab.apiserver import errors, openapi
from llmd_lab.lab.apiserver.access import Access, Attributes, check, default_access
from llmd_lab.lab.apiserver.authentication import BearerAuth
from llmd_lab.lab.apiserver.discovery import AGGREGATED_V2, Discovery, version_info, wants_aggregated
from llmd_lab.lab.apiserver.handlers import ResourceHandler
from llmd_lab.lab.apiserver.hooks import ApiHooks
from llmd_lab.lab.apiserver.responses import json_response, raw_json, status_response
from llmd_lab.lab.apiserver.store import Store

__all__ = ["ApiHooks", "create_app"]

DEFAULT_MAX_BODY = 3 * 1024 * 1024


def create_app(
    store: Store,
    *,
    token: str,
    hooks: ApiHooks | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY,
    bookmark_interval: float = 30.0,
    access: Access | None = None,
) -> Starlette:
    """A Starlette app serving ``store`` as a Kubernetes API server, for bearer ``token`` only (or for the
    users ``access.authenticator`` knows, when given)."""
    if not token:
        raise ValueError("the API server needs a non-empty bearer token")
    access = access or default_access(token)
    discovery = Discovery(store.registry)
    resources = ResourceHandler(store, hooks, max_body_bytes, bookmark_interval, access)
    openapi_cache: dict[Any, bytes] = {}

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def version(request: Request) -> Response:
        return json_response(version_info())

    async def api(request: Request) -> Response:
        if wants_aggregated(request.headers.get("accept", "")):
            return raw_json(discovery.aggregated(core=True), AGGREGATED_V2)
        return raw_json(discovery.api_versions(request.url.netloc))

    async def api_v1(request: Request) -> Response:
        return raw_json(discovery.resource_list("", "v1") or b"{}")

    async def apis(request: Request) -> Response:
        if wants_aggregated(request.headers.get("accept", "")):
            return raw_json(discovery.aggregated(core=False), AGGREGATED_V2)
        return raw_json(discovery.group_list())

    async def api_group(request: Request) -> Response:
        body = discovery.group(request.path_params["group"])
        if body is None:
            return status_response(errors.resource_not_found())
        return raw_json(body)

    async def api_group_version(request: Request) -> Response:
        body = discovery.resource_list(request.path_params["group"], request.path_params["version"])
        if body is None:
            return status_response(errors.resource_not_found())
        return raw_json(body)

    def _cached_openapi(key: Any, build: Any) -> bytes:
        full_key = (store.registry.generation, key)
        body = openapi_cache.get(full_key)
        if body is None:
            if any(k[0] != store.registry.generation for k in openapi_cache):
                openapi_cache.clear()
            body = json.dumps(build(), separators=(",", ":")).encode()
            openapi_cache[full_key] = body
        return body

    async def openapi_v3(request: Request) -> Response:
        module = openapi
        path = request.path_params.get("path")
        if not path:
            return raw_json(_cached_openapi("index", lambda: module.openapi_v3_index(store.registry)))
        try:
            group, ver = module.parse_gv_path(path)
            body = _cached_openapi(("v3", group, ver), lambda: module.openapi_v3_document(store.registry, group, ver))
        except KeyError:
            return status_response(errors.resource_not_found())
        response = raw_json(body)
        if request.query_params.get("hash"):
            response.headers["cache-control"] = "public, immutable"
        return response

    async def openapi_v2(request: Request) -> Response:
        # kubectl reads /openapi/v2 only as gnostic protobuf, so `kubectl apply` of a kind without a CRD
        # says "no matches for kind", as on a cluster
        return Response(openapi.openapi_v2_protobuf(store.registry), media_type=openapi.V2_PROTOBUF)

    async def not_found(request: Request, exc: Exception) -> Response:
        code = getattr(exc, "status_code", 404)
        if code == 405:
            return status_response(errors.method_not_allowed())
        return status_response(errors.resource_not_found())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        resources.streams.close()
        await resources.aclose()

    def authorized(endpoint: Any) -> Any:
        """A non-resource URL: authorized as verb ``get`` on its path, as kube-apiserver does."""
        async def serve(request: Request) -> Response:
            try:
                check(access.authorizer, Attributes(request.state.user, "get", path=request.url.path))
            except errors.ApiError as exc:
                return status_response(exc)
            return await endpoint(request)
        return serve

    routes = [
        Route("/healthz", health),
        Route("/readyz", health),
        Route("/livez", health),
        Route("/version", authorized(version)),
        Route("/api", authorized(api)),
        Route("/api/v1", authorized(api_v1)),
        Route("/apis", authorized(apis)),
        Route("/openapi/v3", authorized(openapi_v3)),
        Route("/openapi/v3/{path:path}", authorized(openapi_v3)),
        Route("/openapi/v2", authorized(openapi_v2)),
        Route("/api/v1/{rest:path}", resources.handle, methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]),
        Route("/apis/{group}", authorized(api_group)),
        Route("/apis/{group}/{version}", authorized(api_group_version)),
        Route("/apis/{group}/{version}/{rest:path}", resources.handle,
              methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]),
    ]
    # in-process TokenReview for the gateway's AuthPolicy (Authorino asks kube-apiserver the same question)
    store.token_reviewer = lambda presented: access.authenticator.authenticate(presented) is not None
    app = Starlette(
        routes=routes,
        middleware=[Middleware(BearerAuth, authenticator=access.authenticator)],
        exception_handlers={HTTPException: not_found},
        lifespan=lifespan,
    )
    # whoever shuts the server down calls app.state.streams.close() first, so watches and followed logs end
    # instead of holding uvicorn's graceful shutdown open (see streams.py)
    app.state.streams = resources.streams
    return app
