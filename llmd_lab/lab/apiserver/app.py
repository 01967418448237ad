"""The API server as a Starlette app: ``create_app(store, token=...)``.

Discovery, OpenAPI and version answers are the stateless scaffold; resource URLs go to
:class:`~.handlers.ResourceHandler` over the store. Authentication wraps everything except the health
endpoints, and every request is authorized (access.py) before it is served; ``access`` is chosen by
:func:`~.access.default_access` unless the caller passes one. Run it with uvicorn on 127.0.0.1 (the lab process does; tests use a background thread), and
call ``app.state.streams.close()`` before shutting uvicorn down so open watches and log streams end.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from llmd_lab.lab.apiserver import errors
from llmd_lab.lab.apiserver.access import Access, Attributes, check, default_access
from llmd_lab.lab.apiserver.authentication import BearerAuth
from llmd_lab.lab.apiserver.handlers import ResourceHandler
from llmd_lab.lab.apiserver.hooks import ApiHooks
from llmd_lab.lab.apiserver.responses import status_response
from llmd_lab.lab.apiserver.scaffold import Scaffold
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
    scaffold = Scaffold(store.registry)
    resources = ResourceHandler(store, hooks, max_body_bytes, bookmark_interval, access)

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

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
        Route("/version", authorized(scaffold.version)),
        Route("/api", authorized(scaffold.api)),
        Route("/api/v1", authorized(scaffold.api_v1)),
        Route("/apis", authorized(scaffold.apis)),
        Route("/openapi/v3", authorized(scaffold.openapi_v3)),
        Route("/openapi/v3/{path:path}", authorized(scaffold.openapi_v3)),
        Route("/openapi/v2", authorized(scaffold.openapi_v2)),
        Route("/api/v1/{rest:path}", resources.handle, methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]),
        Route("/apis/{group}", authorized(scaffold.api_group)),
        Route("/apis/{group}/{version}", authorized(scaffold.api_group_version)),
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
