"""Create-or-update of desired children, comparing only the fields the controller sets.

The API server adds defaults (Service ``clusterIP``, Deployment ``strategy``, …), so "desired ⊆ live" is the
test for "nothing to do": updating on every pass would bump ``generation`` and roll pods for no reason.
"""

from __future__ import annotations

import copy
from typing import Any

from llmd_lab.lab.apiserver.errors import ApiError
from llmd_lab.lab.apiserver.store import Store

MANAGED_FIELDS = ("spec", "data", "stringData", "rules", "roleRef", "subjects", "type")
# fields the API server or another controller owns once set
PRESERVED = {("", "Service"): ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy")}


def is_subset(desired: Any, live: Any) -> bool:
    """Every key/value in ``desired`` is in ``live`` (lists element-wise, same length)."""
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(k in live and is_subset(v, live[k]) for k, v in desired.items())
    if isinstance(desired, list):
        return isinstance(live, list) and len(desired) == len(live) and all(
            is_subset(d, v) for d, v in zip(desired, live, strict=True))
    return desired == live


def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0]


async def apply(store: Store, desired: dict) -> tuple[dict, str]:
    """Create ``desired`` or bring the live object in line; returns (object, "created"|"updated"|"unchanged")."""
    meta = desired["metadata"]
    try:
        live = await store.get(desired["apiVersion"], desired["kind"], meta["name"], meta.get("namespace"))
    except ApiError as exc:
        if exc.code != 404:
            raise
        return await store.create(copy.deepcopy(desired)), "created"
    fields = [f for f in MANAGED_FIELDS if f in desired]
    same = all(is_subset(desired[f], live.get(f)) for f in fields)
    same = same and is_subset(meta.get("labels") or {}, live["metadata"].get("labels") or {})
    same = same and is_subset(meta.get("ownerReferences") or [], live["metadata"].get("ownerReferences") or [])
    if same:
        return live, "unchanged"
    new = copy.deepcopy(live)
    for f in fields:
        value = copy.deepcopy(desired[f])
        keep = PRESERVED.get((_group(desired["apiVersion"]), desired["kind"]), ())
        if f == "spec" and keep:
            for k in keep:
                if k in live.get("spec", {}) and k not in value:
                    value[k] = live["spec"][k]
        new[f] = value
    new["metadata"]["labels"] = {**(live["metadata"].get("labels") or {}), **(meta.get("labels") or {})}
    new["metadata"]["ownerReferences"] = meta.get("ownerReferences") or live["metadata"].get("ownerReferences")
    return await store.update(new), "updated"
