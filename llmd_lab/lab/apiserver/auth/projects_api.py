"""The ``project.openshift.io/v1`` REST endpoints: Projects (get, list) and ProjectRequests (create, list).

Projects are not stored: each answer is computed from Namespaces for the requesting user, as OpenShift's
project proxy storage does (see projects.py for the upstream files). The HTTP layer has already authorized
the verb (``list projects`` at the cluster scope, ``get projects`` in the project's own namespace,
``create projectrequests``) before these run. A request creates objects as the API server itself, so the
requester's own rights do not limit the template's RoleBinding (as in OpenShift).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from llmd_lab.lab.apiserver import errors, tables
from llmd_lab.lab.apiserver.access import UserInfo
from llmd_lab.lab.apiserver.auth import projects
from llmd_lab.lab.apiserver.auth.rbac import RuleAuthorizer
from llmd_lab.lab.apiserver.registry import ResourceType
from llmd_lab.lab.apiserver.request import TABLE, Target, decode_object, output_mode, read_body
from llmd_lab.lab.apiserver.responses import json_response
from llmd_lab.lab.apiserver.store import Store

MAX_BODY = 64 * 1024


class ProjectsAPI:
    """Serves the project.openshift.io resources over ``store`` with ``authorizer`` deciding visibility."""

    group = projects.GROUP

    def __init__(self, store: Store, authorizer: RuleAuthorizer) -> None:
        self.store = store
        self.authorizer = authorizer

    def serves(self, rt: ResourceType) -> bool:
        return rt.group == self.group

    async def handle(self, request: Request, rt: ResourceType, target: Target, user: UserInfo) -> Response:
        if rt.plural == "projectrequests":
            if request.method == "POST" and target.name is None:
                return await self._request(request, user)
            if request.method == "GET" and target.name is None:
                return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"})
        elif request.method == "GET" and target.subresource is None:
            if target.name is None:
                return await self._list(request, rt, user)
            return await self._get(request, rt, target.name)
        raise errors.method_not_allowed()

    async def _namespaces(self) -> tuple[list[dict], str]:
        items, meta = await self.store.list("v1", "Namespace")
        return items, meta["resourceVersion"]

    async def _list(self, request: Request, rt: ResourceType, user: UserInfo) -> Response:
        namespaces, rv = await self._namespaces()
        items = projects.visible_projects(self.authorizer, user, namespaces)
        if output_mode(request.headers.get("accept", ""))[0] == TABLE:
            return json_response(tables.table(rt, items, rv, request.query_params.get("includeObject") or "Metadata"))
        return json_response(projects.project_list(items, rv))

    async def _get(self, request: Request, rt: ResourceType, name: str) -> Response:
        try:
            namespace = await self.store.get("v1", "Namespace", name)
        except errors.ApiError as exc:
            if exc.code == 404:
                raise errors.not_found("projects", projects.GROUP, name) from None
            raise
        project = projects.project_of(namespace)
        if output_mode(request.headers.get("accept", ""))[0] == TABLE:
            return json_response(tables.table(rt, [project], project["metadata"].get("resourceVersion", "")))
        return json_response(project)

    async def _request(self, request: Request, user: UserInfo) -> Response:
        body = decode_object(await read_body(request, MAX_BODY), request.headers.get("content-type", ""),
                             projects.GROUP, "ProjectRequest")
        if not isinstance(body, dict):
            raise errors.bad_request("the request body must be one ProjectRequest object")
        namespace, binding = projects.request_objects(body, user)
        name = namespace["metadata"]["name"]
        try:
            created = await self.store.create(namespace)
        except errors.ApiError as exc:
            if exc.code == 409:
                raise errors.already_exists("project", projects.GROUP, name) from None
            raise
        await self.store.create(binding)
        return json_response(projects.project_of(created), 201)
