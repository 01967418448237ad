"""Put the RBAC bootstrap policy and the lab's people into the store, and keep aggregated roles filled.

``install_policy`` runs at every start, like kube-apiserver's ``rbac/bootstrap-roles`` post-start hook: missing
bootstrap objects are created, and those annotated ``rbac.authorization.kubernetes.io/autoupdate: "true"``
get their rules back (objects a user made or changed without that annotation are left alone).
:class:`ClusterRoleAggregator` is the aggregation controller: it follows ClusterRoles with the lab's informer
(re-list, back-off) and rewrites the rules of every role with an ``aggregationRule`` whenever a selected role
changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from llmd_lab._tasks import cancel_and_wait
from llmd_lab.lab.apiserver import errors
from llmd_lab.lab.apiserver.auth.aggregation import aggregated_rules
from llmd_lab.lab.apiserver.auth.bootstrap import bootstrap_objects
from llmd_lab.lab.apiserver.auth.policy import RBAC_VERSION
from llmd_lab.lab.apiserver.store import Store
from llmd_lab.lab.context import LabContext
from llmd_lab.lab.informer import Informer

log = logging.getLogger(__name__)
AUTOUPDATE = "rbac.authorization.kubernetes.io/autoupdate"


async def _ensure(store: Store, obj: dict) -> None:
    meta = obj["metadata"]
    try:
        current = await store.get(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
    except errors.ApiError as exc:
        if exc.code != 404:
            raise
        await store.create(obj)
        return
    autoupdate = (current["metadata"].get("annotations") or {}).get(AUTOUPDATE) == "true"
    if autoupdate and obj["kind"] == "ClusterRole" and not obj.get("aggregationRule") \
            and current.get("rules") != obj.get("rules"):
        await store.update({**current, "rules": obj.get("rules") or []})


async def install_policy(store: Store, extra: Iterable[dict] = ()) -> None:
    """Bootstrap RBAC, then ``extra`` objects (projects, bindings, service accounts) when missing."""
    for obj in [*bootstrap_objects(), *extra]:
        await _ensure(store, obj)
    await aggregate_stored(store)


async def aggregate_stored(store: Store) -> list[str]:
    """One pass of the aggregation controller over the stored ClusterRoles; returns the roles it rewrote."""
    changed: list[str] = []
    for _ in range(8):  # chains settle in a few passes (view -> edit -> admin -> kserve-admin)
        roles, _rv = await store.list(RBAC_VERSION, "ClusterRole")
        moved = False
        for role in roles:
            rules = aggregated_rules(role, roles)
            if rules is not None and rules != (role.get("rules") or []):
                with contextlib.suppress(errors.ApiError):  # 409: someone wrote it meanwhile; next pass retries
                    await store.update({**role, "rules": rules})
                    changed.append(role["metadata"]["name"])
                    moved = True
        if not moved:
            break
    return list(dict.fromkeys(changed))


class ClusterRoleAggregator:
    """The clusterrole-aggregation controller as a lab component."""

    name = "clusterrole-aggregation"

    def __init__(self) -> None:
        self._task: asyncio.Task | None = None

    async def start(self, ctx: LabContext) -> None:
        store = ctx.store

        async def changed(_type: str, _role: dict) -> None:
            await aggregate_stored(store)

        informer = Informer(store, RBAC_VERSION, "ClusterRole", changed, owner=self.name)
        self._task = asyncio.create_task(informer.run(), name=self.name)

    async def stop(self) -> None:
        await cancel_and_wait([self._task])
