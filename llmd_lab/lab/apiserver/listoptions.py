"""``resourceVersion`` / ``resourceVersionMatch`` on a list, as kube-apiserver answers them.

Upstream: staging/src/k8s.io/apimachinery/pkg/apis/meta/internalversion/validation/validation.go
(ValidateListOptions), staging/src/k8s.io/apiserver/pkg/storage/cacher (too large → 504 "Too large resource
version"; a version the cache no longer holds → 410 Expired). The lab keeps no old states, so an
``Exact`` list of an older version is served only when nothing of that kind changed since (the state is
then the same); otherwise it is 410, what a cluster answers once etcd has compacted that revision.
"""

from __future__ import annotations

from llmd_lab.lab.apiserver import errors
from llmd_lab.lab.apiserver.bus import GroupKind
from llmd_lab.lab.apiserver.storage import Storage

MATCHES = ("Exact", "NotOlderThan", "")


def _forbidden(detail: str) -> errors.ApiError:
    return errors.invalid("ListOptions", "meta.k8s.io", "", [errors.field_cause(
        "resourceVersionMatch", f"Forbidden: {detail}", "FieldValueForbidden")])


def list_resource_version(storage: Storage, gk: GroupKind, resource_version: str | None, match: str | None,
                          continue_token: str | None) -> str:
    """The resourceVersion the list is served at; raises what kube-apiserver answers otherwise."""
    rv, match = resource_version or "", match or ""
    if match not in MATCHES:
        raise errors.invalid("ListOptions", "meta.k8s.io", "", [errors.field_cause(
            "resourceVersionMatch", f'Unsupported value: "{match}": supported values: "Exact", "NotOlderThan", ""',
            "FieldValueNotSupported")])
    if match and not rv:
        raise _forbidden("resourceVersionMatch is forbidden unless resourceVersion is provided")
    if match and continue_token:
        raise _forbidden("resourceVersionMatch is forbidden when continue is provided")
    if match == "Exact" and rv == "0":
        raise _forbidden('resourceVersionMatch "exact" is forbidden for resourceVersion "0"')
    current = storage.rv
    if rv in ("", "0"):
        return str(current)
    try:
        wanted = int(rv)
    except ValueError:
        raise errors.bad_request(f"invalid resourceVersion {rv!r}: pass the metadata.resourceVersion of a list "
                                 "or object") from None
    if wanted > current:
        raise errors.ApiError(504, "Timeout", f"Too large resource version: {wanted}, current: {current}",
                              details={"causes": [{"reason": "ResourceVersionTooLarge",
                                                   "message": "Too large resource version"}],
                                       "retryAfterSeconds": 1})
    if match != "Exact" or wanted == current:
        return str(current)
    if wanted < storage.bus.floor_rv or storage.bus.since(wanted, gk, lambda _: True):
        raise errors.gone(f"too old resource version: {wanted} ({current})")
    return str(wanted)
