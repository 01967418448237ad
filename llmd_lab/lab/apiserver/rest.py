"""REST verbs over storage: get, list, create, update (and the status subresource), delete, watch — one way
to call each, as kube-apiserver's generic registry store serves them. Patch/apply and scale are in
patchverbs.py, and reach storage through :meth:`RestVerbs.write_update` like every other update.

Semantics follow kube-apiserver: ``generation`` bumped on spec changes only; 409 on stale writes; no-op
updates keep the resourceVersion; finalizers and ``deletionTimestamp``; ``Orphan``/``Foreground`` deletion
set the ``orphan``/``foregroundDeletion`` finalizers the garbage collector (lifecycle/) works off. Every
write runs mutate → validate (strategy.py) → validating webhooks (admission.py) → storage, so nothing
refused is half-applied.

Objects are plain dicts exactly as the REST API returns them. Each verb hands out a copy unless the caller
passes ``copy=False`` (the HTTP layer, which only serialises them): such results must never be mutated.
All verbs run on one event loop and never await mid-change, so each call is atomic.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from llmd_lab.lab.apiserver import defaultstorageclass, errors, objectmeta, strategy
from llmd_lab.lab.apiserver import selectors as sel
from llmd_lab.lab.apiserver.admission import AdmissionChain, AdmissionRequest
from llmd_lab.lab.apiserver.bus import clone
from llmd_lab.lab.apiserver.listoptions import list_resource_version
from llmd_lab.lab.apiserver.registry import ResourceRegistry, ResourceType
from llmd_lab.lab.apiserver.storage import Key, Storage, encode
from llmd_lab.lab.apiserver.watchstream import WatchStream, present

__all__ = ["FOREGROUND", "NAMESPACE_GK", "ORPHAN", "RestVerbs"]

NAMESPACE_GK = ("", "Namespace")
POD_GK = ("", "Pod")
FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
PROPAGATIONS = ("Background", "Foreground", "Orphan")
_KEPT_ON_UPDATE = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation",
                   "namespace")


def _out(obj: dict, copy: bool) -> dict:
    return clone(obj) if copy else obj


class RestVerbs:
    """See the module docstring."""

    def __init__(self, storage: Storage, registry: ResourceRegistry, *, graceful_pod_deletion: bool = False,
                 clock: Callable[[], datetime] | None = None) -> None:
        """``graceful_pod_deletion``: deleting a Pod bound to a node only sets ``deletionTimestamp`` (kubectl
        shows ``Terminating``) and the kubelet finishes it with ``grace_period_seconds=0`` — on only where a
        kubelet runs, otherwise pods would never go away."""
        self.storage = storage
        self.registry = registry
        self.admission = AdmissionChain()  # validating webhooks (ValidatingWebhookConfiguration)
        self.graceful_pod_deletion = graceful_pod_deletion
        self._clock = clock

    # ------------------------------------------------------------------ helpers
    @property
    def resource_version(self) -> str:
        return str(self.storage.rv)

    def encoded(self, obj: dict) -> str:
        """The JSON text of an object a verb returned (cached for stored objects)."""
        return self.storage.encoded(obj)

    def now(self) -> str:
        return objectmeta.now(self._clock)

    def type_of(self, api_version: str, kind: str) -> ResourceType:
        if not isinstance(api_version, str) or not isinstance(kind, str):
            raise errors.bad_request("apiVersion and kind must be strings")
        return self.registry.lookup_kind(api_version, kind)

    @staticmethod
    def key(rt: ResourceType, name: str, namespace: str | None) -> Key:
        if rt.namespaced:
            if not namespace:
                raise errors.bad_request(f"{rt.kind} is namespaced: a namespace is required")
            return (rt.group, rt.kind, namespace, name)
        return (rt.group, rt.kind, "", name)

    def stored(self, rt: ResourceType, name: str, namespace: str | None) -> dict:
        """The stored object (404 when there is none); never mutate it."""
        obj = self.storage.find(self.key(rt, name, namespace))
        if obj is None:
            raise errors.not_found(rt.plural, rt.group, name)
        return obj

    def _stored_type(self, rt: ResourceType) -> None:
        if rt.virtual:
            raise errors.method_not_allowed(f"{rt.plural} can only be created")

    def _admit(self, operation: str, rt: ResourceType, new: dict, old: dict | None, subresource: str,
               dry_run: bool) -> None:
        if not self.admission.webhooks:
            return
        meta = new["metadata"]
        self.admission.admit(AdmissionRequest(
            operation=operation, group=rt.group, version=rt.version, kind=rt.kind, name=meta.get("name", ""),
            namespace=meta.get("namespace"), object=new, old_object=old, subresource=subresource,
            dry_run=dry_run,
        ))

    # ------------------------------------------------------------------ get / list
    async def get(self, api_version: str, kind: str, name: str, namespace: str | None = None, *,
                  copy: bool = True) -> dict:
        rt = self.type_of(api_version, kind)
        self._stored_type(rt)
        return _out(present(self.stored(rt, name, namespace), rt), copy)

    async def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        *,
        limit: int | None = None,
        continue_token: str | None = None,
        resource_version: str | None = None,
        resource_version_match: str | None = None,
        copy: bool = True,
    ) -> tuple[list[dict], dict[str, str]]:
        """Objects sorted by namespace/name, and the list's ``metadata`` (``resourceVersion`` to start a watch
        from; ``continue`` when ``limit`` cut the page short). ``resource_version``/``_match``: see
        listoptions.py."""
        rt = self.type_of(api_version, kind)
        self._stored_type(rt)
        served_rv = list_resource_version(self.storage, rt.group_kind, resource_version, resource_version_match,
                                          continue_token)
        labels = sel.parse_label_selector(label_selector)
        fields = sel.parse_field_selector(field_selector, rt.group, rt.kind)
        start = _decode_continue(continue_token) if continue_token else None
        by_ns = self.storage.by_namespace(rt.group_kind)
        items: list[dict] = []
        meta = {"resourceVersion": served_rv}
        for ns in [namespace] if namespace else sorted(by_ns):
            bucket = by_ns.get(ns) or {}
            for name in sorted(bucket):
                obj = bucket[name]
                if (start is not None and (ns, name) <= start) or (labels and not sel.labels_match(labels, obj)) \
                        or (fields and not sel.fields_match(fields, obj)):
                    continue
                if limit and len(items) >= limit:
                    last = items[-1]["metadata"]
                    meta["continue"] = base64.urlsafe_b64encode(
                        encode({"ns": last.get("namespace", ""), "name": last["name"]}).encode()).decode()
                    return [_out(i, copy) for i in items], meta
                items.append(present(obj, rt))
        return [_out(i, copy) for i in items], meta

    # ------------------------------------------------------------------ create
    async def create(self, obj: dict, *, dry_run: bool = False, copy: bool = True) -> dict:
        """Create ``obj`` (namespaced kinds take ``metadata.namespace``); returns the stored object."""
        objectmeta.check_shape(obj)
        rt = self.type_of(obj["apiVersion"], obj["kind"])
        self._stored_type(rt)
        return _out(present(self.write_create(obj, dry_run=dry_run), rt), copy)

    def write_create(self, obj: dict, *, dry_run: bool = False) -> dict:
        """The create path shared with server-side apply of a new object; returns the stored object."""
        objectmeta.check_shape(obj)
        rt = self.type_of(obj["apiVersion"], obj["kind"])
        new = clone(obj)
        strategy.decode(new, rt)
        new = strategy.mutate(new, self.registry)
        if not isinstance(new.get("metadata"), dict):
            new["metadata"] = {}
        meta = new["metadata"]
        if meta.get("resourceVersion"):
            raise errors.bad_request("metadata.resourceVersion should not be set on objects to be created (remove it)")
        self._check_namespace(rt, meta)
        self._name(rt, meta)
        key = self.key(rt, meta["name"], meta.get("namespace"))
        strategy.validate(new, rt, self.registry)
        for field in ("deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            meta.pop(field, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = self.now()
        if objectmeta.tracks_generation(rt):
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        objectmeta.apply_create_defaults(new, rt)
        if rt.group_kind == ("", "PersistentVolumeClaim"):
            defaultstorageclass.admit(new, self.storage)  # a mutating admission plugin, before validating ones
        if rt.group_kind == strategy.CRD_GK:
            new["status"] = strategy.crd_status(new, self.now())
        # kube-apiserver: validation, then validating admission, then storage (which answers AlreadyExists)
        self._admit("CREATE", rt, new, None, "", dry_run)
        if self.storage.find(key) is not None:
            raise errors.already_exists(rt.plural, rt.group, meta["name"])
        if dry_run:
            return new
        stored = self.storage.commit(key, None, new)
        assert stored is not None
        return stored

    def _check_namespace(self, rt: ResourceType, meta: dict) -> None:
        if not rt.namespaced:
            meta.pop("namespace", None)
            return
        ns = meta.get("namespace")
        if not ns:
            raise errors.invalid(rt.kind, rt.group, meta.get("name", ""), [
                errors.field_cause("metadata.namespace", "Required value", "FieldValueRequired")])
        namespace = self.storage.find(("", "Namespace", "", ns))
        if namespace is None:
            raise errors.not_found("namespaces", "", ns)
        if namespace["metadata"].get("deletionTimestamp"):
            raise errors.forbidden(
                f'{rt.plural}{"." + rt.group if rt.group else ""} "{meta.get("name") or meta.get("generateName", "")}" '
                f"is forbidden: unable to create new content in namespace {ns} because it is being terminated"
            )

    def _name(self, rt: ResourceType, meta: dict) -> None:
        if meta.get("name"):
            return
        if not meta.get("generateName"):
            raise errors.invalid(rt.kind, rt.group, "", [errors.field_cause(
                "metadata.name", "Required value: name or generateName is required", "FieldValueRequired")])
        for _ in range(8):
            candidate = objectmeta.generate_name(meta["generateName"])
            if self.storage.find(self.key(rt, candidate, meta.get("namespace"))) is None:
                break
        meta["name"] = candidate

    # ------------------------------------------------------------------ update
    async def update(self, obj: dict, *, dry_run: bool = False, copy: bool = True) -> dict:
        """Replace an object; ``metadata.resourceVersion``, when set, must be the stored one (409 otherwise).
        Status is ignored for kinds with a status subresource (use :meth:`update_status`)."""
        return _out(self.write_update(obj, dry_run=dry_run), copy)

    async def update_status(self, obj: dict, *, dry_run: bool = False, copy: bool = True) -> dict:
        """The status subresource: write only ``status`` (spec and metadata changes in ``obj`` are ignored)."""
        return _out(self.write_update(obj, subresource="status", dry_run=dry_run), copy)

    def write_update(self, obj: dict, *, subresource: str | None = None, dry_run: bool = False,
                     admit_as: str | None = None) -> dict:
        """The update path every verb that changes an object ends in (update, status, patch, apply, scale).

        ``admit_as``: the subresource webhooks see (``scale`` writes land here as whole-object updates)."""
        objectmeta.check_shape(obj)
        rt = self.type_of(obj["apiVersion"], obj["kind"])
        self._stored_type(rt)
        if subresource == "status" and not rt.has("status"):
            raise errors.resource_not_found()
        meta_in = obj.get("metadata") or {}
        if not meta_in.get("name"):
            raise errors.invalid(rt.kind, rt.group, "", [
                errors.field_cause("metadata.name", "Required value", "FieldValueRequired")])
        key = self.key(rt, meta_in["name"], meta_in.get("namespace") if rt.namespaced else None)
        current = self.stored(rt, key[3], key[2] or None)
        _check_preconditions(rt, meta_in, current["metadata"])
        new = self._status_update(obj, current) if subresource == "status" else self._spec_update(obj, current, rt)
        new["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        # admission runs before storage notices a no-op, as in kube-apiserver's update path
        self._admit("UPDATE", rt, new, current, admit_as if admit_as is not None else subresource or "", dry_run)
        if new == current:
            return present(current, rt)  # no-op writes keep the resourceVersion, as kube-apiserver does
        if dry_run:
            return present(new, rt)
        stored = self.storage.commit(key, current, new)
        assert stored is not None
        if stored["metadata"].get("deletionTimestamp") and not stored["metadata"].get("finalizers"):
            self.remove(key)  # the last finalizer went: the object goes
        return present(stored, rt)

    def _status_update(self, obj: dict, current: dict) -> dict:
        new = clone(current)
        if obj.get("status") is None:
            new.pop("status", None)
        else:
            new["status"] = strategy.mutate({**current, "status": clone(obj["status"])}, self.registry).get("status")
        meta_in = obj.get("metadata") or {}
        if "managedFields" in meta_in:
            new["metadata"]["managedFields"] = clone(meta_in["managedFields"])
        return new

    def _spec_update(self, obj: dict, current: dict, rt: ResourceType) -> dict:
        new = clone(obj)
        strategy.decode(new, rt)
        strategy.carry_allocated(new, current, rt)
        new = strategy.mutate(new, self.registry)
        new["apiVersion"] = current["apiVersion"]
        meta, cur_meta = new.setdefault("metadata", {}), current["metadata"]
        for field in _KEPT_ON_UPDATE:
            if field in cur_meta:
                meta[field] = cur_meta[field]
            else:
                meta.pop(field, None)
        if rt.has("status") or rt.group_kind == strategy.CRD_GK:
            if "status" in current:
                new["status"] = clone(current["status"])
            else:
                new.pop("status", None)
        if cur_meta.get("deletionTimestamp"):
            added = set(meta.get("finalizers") or []) - set(cur_meta.get("finalizers") or [])
            if added:
                raise errors.invalid(rt.kind, rt.group, meta["name"], [errors.field_cause(
                    "metadata.finalizers",
                    f"Forbidden: no new finalizers can be added if the object is being deleted, found new "
                    f"finalizers {sorted(added)}", "FieldValueForbidden")])
        objectmeta.default_templates(new, rt)
        if objectmeta.tracks_generation(rt) and strategy.spec_part(new) != strategy.spec_part(current):
            meta["generation"] = int(cur_meta.get("generation", 1)) + 1
        strategy.validate(new, rt, self.registry, old=current)
        return new

    # ------------------------------------------------------------------ delete
    async def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None = None,
        propagation: str | None = "Background",
        *,
        dry_run: bool = False,
        preconditions: dict | None = None,
        grace_period_seconds: int | None = None,
        copy: bool = True,
    ) -> dict:
        """Delete an object; returns its last state (with ``deletionTimestamp`` while finalizers hold it)."""
        rt = self.type_of(api_version, kind)
        self._stored_type(rt)
        # batch/v1 Jobs orphan their pods unless told otherwise (job strategy DefaultGarbageCollectionPolicy)
        propagation = propagation or ("Orphan" if rt.group_kind == ("batch", "Job") else "Background")
        if propagation not in PROPAGATIONS:
            raise errors.bad_request(f"invalid propagationPolicy {propagation!r}: use one of {', '.join(PROPAGATIONS)}")
        key = self.key(rt, name, namespace)
        current = self.stored(rt, name, namespace)
        _check_delete_preconditions(rt, name, current["metadata"], preconditions or {})
        if dry_run:
            return _out(present(current, rt), copy)
        return _out(present(self.delete_stored(key, current, rt, propagation, grace_period_seconds), rt), copy)

    def delete_stored(self, key: Key, current: dict, rt: ResourceType, propagation: str, grace: int | None) -> dict:
        """Delete the stored object ``current`` at ``key`` (the lifecycle controllers call this too)."""
        meta = current["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        dependents = bool(self.storage.dependents(meta["uid"]))
        if rt.group_kind == NAMESPACE_GK:
            return self._terminate_namespace(key, current)
        for wanted, finalizer in (("Orphan", ORPHAN), ("Foreground", FOREGROUND)):
            if propagation == wanted and dependents and finalizer not in finalizers:
                finalizers.append(finalizer)
        if rt.group_kind == strategy.CRD_GK and strategy.CRD_CLEANUP not in finalizers and self._has_instances(current):
            finalizers.append(strategy.CRD_CLEANUP)  # the CRD controller deletes the instances, then lets go
        graceful = _graceful_pending(current, rt, self.graceful_pod_deletion) and grace != 0
        if not finalizers and not graceful:
            return self.remove(key) or current
        if meta.get("deletionTimestamp") and finalizers == list(meta.get("finalizers") or []):
            return current
        new = clone(current)
        new["metadata"]["finalizers"] = finalizers
        if not finalizers:
            new["metadata"].pop("finalizers")
        if not meta.get("deletionTimestamp"):
            new["metadata"]["deletionTimestamp"] = self.now()
            if grace is None:
                grace = int((current.get("spec") or {}).get("terminationGracePeriodSeconds", 30)) if graceful else 0
            new["metadata"]["deletionGracePeriodSeconds"] = grace
        stored = self.storage.commit(key, current, new)
        return self.storage.find(key) or stored or current

    def _has_instances(self, crd: dict) -> bool:
        gk = (crd["spec"]["group"], crd["spec"]["names"]["kind"])
        return any(self.storage.by_namespace(gk).values())

    def _terminate_namespace(self, key: Key, current: dict) -> dict:
        """Mark the namespace Terminating; the namespace controller empties it and removes it."""
        if not current["metadata"].get("deletionTimestamp"):
            new = clone(current)
            new["metadata"]["deletionTimestamp"] = self.now()
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            new["status"] = {**(new.get("status") or {}), "phase": "Terminating"}
            self.storage.commit(key, current, new)
        return self.storage.find(key) or current

    def remove(self, key: Key) -> dict | None:
        """Take an object out of storage for good (its finalizers are done); returns its last state."""
        obj = self.storage.find(key)
        return None if obj is None else self.storage.commit(key, obj, None)

    # ------------------------------------------------------------------ watch
    def watch(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        *,
        allow_bookmarks: bool = False,
        bookmark_interval: float = 60.0,
        copy: bool = True,
    ) -> WatchStream:
        """Open a watch now (errors such as 410 Gone raise here, before any event); iterate it with
        ``async for`` and close it with ``aclose()``.

        Replays the current objects as ADDED when ``resource_version`` is unset or "0", otherwise the events
        after it, then streams."""
        rt = self.type_of(api_version, kind)
        self._stored_type(rt)
        labels = sel.parse_label_selector(label_selector)
        fields = sel.parse_field_selector(field_selector, rt.group, rt.kind)

        def matches(obj: dict) -> bool:
            if namespace and obj["metadata"].get("namespace") != namespace:
                return False
            return sel.labels_match(labels, obj) and sel.fields_match(fields, obj)

        since = None
        if resource_version not in (None, "", "0"):
            try:
                since = int(resource_version)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                raise errors.bad_request(
                    f"invalid resourceVersion {resource_version!r}: pass the metadata.resourceVersion of a "
                    "list or object"
                ) from None
        initial, sub = self.storage.open_watch(rt.group_kind, matches, since)
        return WatchStream(self.storage, rt, initial, sub, allow_bookmarks, bookmark_interval, copy)


# ---------------------------------------------------------------------- helpers
def _decode_continue(token: str) -> tuple[str, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        return (data["ns"], data["name"])
    except (ValueError, KeyError, TypeError):
        raise errors.bad_request(
            "invalid continue token: pass the metadata.continue value of the previous page unchanged"
        ) from None


def _check_preconditions(rt: ResourceType, meta_in: dict, cur_meta: dict) -> None:
    rv = meta_in.get("resourceVersion")
    if rv and rv != cur_meta["resourceVersion"]:
        raise errors.conflict(rt.plural, rt.group, meta_in["name"])
    if meta_in.get("uid") and meta_in["uid"] != cur_meta["uid"]:
        raise errors.conflict(
            rt.plural, rt.group, meta_in["name"],
            f'Precondition failed: UID in precondition: {meta_in["uid"]}, UID in object meta: {cur_meta["uid"]}',
        )


def _check_delete_preconditions(rt: ResourceType, name: str, meta: dict, preconditions: dict[str, Any]) -> None:
    for field in ("uid", "resourceVersion"):
        want = preconditions.get(field)
        if want and want != meta.get(field):
            raise errors.conflict(
                rt.plural, rt.group, name,
                f"Precondition failed: {field} in precondition: {want}, {field} in object meta: {meta.get(field)}",
            )


def _graceful_pending(obj: dict, rt: ResourceType, enabled: bool) -> bool:
    """A Pod bound to a node goes through graceful deletion (the kubelet removes it)."""
    return enabled and rt.group_kind == POD_GK and bool((obj.get("spec") or {}).get("nodeName"))
