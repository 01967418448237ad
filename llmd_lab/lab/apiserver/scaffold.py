"""The stateless scaffold of the API server: version, discovery and OpenAPI documents, all derived from
the resource registry (no object is read), cached per registry generation."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from llmd_lab.lab.apiserver import errors, openapi
from llmd_lab.lab.apiserver.discovery import AGGREGATED_V2, Discovery, version_info, wants_aggregated
from llmd_lab.lab.apiserver.registry import ResourceRegistry
from llmd_lab.lab.apiserver.responses import json_response, raw_json, status_response


class Scaffold:
    """Starlette endpoints for /version, /api, /apis..., /openapi/v2 and /openapi/v3."""

    def __init__(self, registry: ResourceRegistry) -> None:
        self.registry = registry
        self.discovery = Discovery(registry)
        self._openapi: dict[Any, bytes] = {}

    async def version(self, request: Request) -> Response:
        return json_response(version_info())

    async def api(self, request: Request) -> Response:
        if wants_aggregated(request.headers.get("accept", "")):
            return raw_json(self.discovery.aggregated(core=True), AGGREGATED_V2)
        return raw_json(self.discovery.api_versions(request.url.netloc))

    async def api_v1(self, request: Request) -> Response:
        return raw_json(self.discovery.resource_list("", "v1") or b"{}")

    async def apis(self, request: Request) -> Response:
        if wants_aggregated(request.headers.get("accept", "")):
            return raw_json(self.discovery.aggregated(core=False), AGGREGATED_V2)
        return raw_json(self.discovery.group_list())

    async def api_group(self, request: Request) -> Response:
        body = self.discovery.group(request.path_params["group"])
        if body is None:
            return status_response(errors.resource_not_found())
        return raw_json(body)

    async def api_group_version(self, request: Request) -> Response:
        body = self.discovery.resource_list(request.path_params["group"], request.path_params["version"])
        if body is None:
            return status_response(errors.resource_not_found())
        return raw_json(body)

    def _cached(self, key: Any, build: Callable[[], Any]) -> bytes:
        full_key = (self.registry.generation, key)
        body = self._openapi.get(full_key)
        if body is None:
            if any(k[0] != self.registry.generation for k in self._openapi):
                self._openapi.clear()
            body = json.dumps(build(), separators=(",", ":")).encode()
            self._openapi[full_key] = body
        return body

    async def openapi_v3(self, request: Request) -> Response:
        path = request.path_params.get("path")
        if not path:
            return raw_json(self._cached("index", lambda: openapi.openapi_v3_index(self.registry)))
        try:
            group, ver = openapi.parse_gv_path(path)
            body = self._cached(("v3", group, ver), lambda: openapi.openapi_v3_document(self.registry, group, ver))
        except KeyError:
            return status_response(errors.resource_not_found())
        response = raw_json(body)
        if request.query_params.get("hash"):
            response.headers["cache-control"] = "public, immutable"
        return response

    async def openapi_v2(self, request: Request) -> Response:
        # kubectl reads /openapi/v2 only as gnostic protobuf, so `kubectl apply` of a kind without a CRD
        # says "no matches for kind", as on a cluster
        return Response(openapi.openapi_v2_protobuf(self.registry), media_type=openapi.V2_PROTOBUF)
