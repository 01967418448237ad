"""The API server's stateful store: objects, resourceVersions, watch, deletion and garbage collection.

Objects live in an in-memory index (reads never touch disk) and are written through to SQLite, one
transaction per object write, so a crash leaves whole objects only and ``close()``/reopen loses nothing.
All methods run on one event loop and never await in the middle of a change, so each call is atomic with
respect to the others. Objects are plain dicts exactly as the REST API returns them; the public methods
hand out copies, so callers may mutate what they get.

Semantics follow kube-apiserver: a global monotonically increasing ``resourceVersion``; ``generation``
bumped on spec changes only; the ``status`` subresource; 409 on stale writes; finalizers and
``deletionTimestamp``; ``ownerReferences`` garbage collection (Background, Foreground, Orphan); namespace
deletion; CRDs registering resources when created.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from llmd_lab.lab.apiserver import errors, objectmeta
from llmd_lab.lab.apiserver import patch as patching
from llmd_lab.lab.apiserver import selectors as sel
from llmd_lab.lab.apiserver.admission import AdmissionChain, AdmissionRequest, ValidatingWebhook
from llmd_lab.lab.apiserver.bus import Change, EventBus, Subscriber, WatchEvent, clone
from llmd_lab.lab.apiserver.registry import ResourceRegistry, ResourceType

__all__ = ["Store", "WatchEvent"]

GroupKind = tuple[str, str]
Key = tuple[str, str, str, str]  # group, kind, namespace ("" when cluster-scoped), name
CRD_GK: GroupKind = ("apiextensions.k8s.io", "CustomResourceDefinition")
NAMESPACE_GK: GroupKind = ("", "Namespace")
POD_GK: GroupKind = ("", "Pod")
FOREGROUND = "foregroundDeletion"
PROPAGATIONS = ("Background", "Foreground", "Orphan")
SEED_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
# The lab's one identity (its kubeconfig's bearer token), a cluster admin like OpenShift's kube:admin:
# SelfSubjectReview (`kubectl auth whoami`, connect()) and TokenReview name it, and every access review allows it.
LAB_USER = "llmd-lab-admin"
LAB_GROUPS = ("system:masters", "system:authenticated")


def _json(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


class Store:
    """See the module docstring and docs/architecture.md ("API server store")."""

    def __init__(
        self,
        path: str | Path = ":memory:",
        *,
        registry: ResourceRegistry | None = None,
        history: int = 10_000,
        seed_namespaces: bool = True,
        graceful_pod_deletion: bool = False,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """Open (or create) the store at ``path``; ``":memory:"`` keeps nothing after ``close()``.

        ``graceful_pod_deletion``: deleting a Pod that is bound to a node only sets ``deletionTimestamp``
        (kubectl shows ``Terminating``) and the kubelet finishes it with ``grace_period_seconds=0`` — turn it
        on only where a kubelet runs, otherwise pods would never go away.
        """
        self.registry = registry or ResourceRegistry()
        self.graceful_pod_deletion = graceful_pod_deletion
        self.token_reviewer: Callable[[str], bool] | None = None  # set by the HTTP app for TokenReview
        self.admission = AdmissionChain()  # validating webhooks (see register_validating_webhook)
        self._clock = clock
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        if str(path) != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS objects (grp TEXT, kind TEXT, namespace TEXT, name TEXT, rv INTEGER,"
            " body TEXT, PRIMARY KEY (grp, kind, namespace, name))"
        )
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        self._objects: dict[GroupKind, dict[str, dict[str, dict]]] = {}
        self._by_uid: dict[str, Key] = {}
        self._dependents: dict[str, set[Key]] = {}
        self._encoded: dict[int, str] = {}  # id(stored object) -> its JSON, reused by list responses
        self._gc_tasks: set[asyncio.Task] = set()
        row = self._db.execute("SELECT value FROM meta WHERE key='rv'").fetchone()
        self._rv = int(row[0]) if row else 0
        self._load()
        self._bus = EventBus(history, self._rv)
        if seed_namespaces:
            for ns in SEED_NAMESPACES:
                if self._find(("", "Namespace", "", ns)) is None:
                    self._create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

    # ------------------------------------------------------------------ persistence
    def _load(self) -> None:
        rows = self._db.execute("SELECT grp, kind, namespace, name, body FROM objects ORDER BY rv").fetchall()
        for grp, kind, ns, name, body in rows:
            obj = json.loads(body)
            self._index((grp, kind, ns, name), obj)
            self._encoded[id(obj)] = body
            if (grp, kind) == CRD_GK:
                self.registry.register_crd(obj)

    def close(self) -> None:
        for task in self._gc_tasks:
            task.cancel()
        self._db.close()

    @property
    def resource_version(self) -> str:
        return str(self._rv)

    def _index(self, key: Key, obj: dict) -> None:
        grp, kind, ns, name = key
        self._objects.setdefault((grp, kind), {}).setdefault(ns, {})[name] = obj
        meta = obj["metadata"]
        self._by_uid[meta["uid"]] = key
        for ref in meta.get("ownerReferences") or []:
            self._dependents.setdefault(ref.get("uid", ""), set()).add(key)

    def _unindex(self, key: Key, obj: dict) -> None:
        grp, kind, ns, name = key
        bucket = self._objects.get((grp, kind), {}).get(ns)
        if bucket is not None:
            bucket.pop(name, None)
            if not bucket:
                self._objects[(grp, kind)].pop(ns, None)
        meta = obj["metadata"]
        self._by_uid.pop(meta["uid"], None)
        for ref in meta.get("ownerReferences") or []:
            deps = self._dependents.get(ref.get("uid", ""))
            if deps is not None:
                deps.discard(key)
                if not deps:
                    self._dependents.pop(ref.get("uid", ""), None)

    def _commit(self, key: Key, old: dict | None, new: dict | None) -> dict | None:
        """Write one object change in one transaction, then index it and tell the watchers."""
        rv = self._rv + 1
        if new is not None:
            new["metadata"]["resourceVersion"] = str(rv)
        body = _json(new) if new is not None else None
        try:
            self._db.execute("BEGIN IMMEDIATE")
            if new is None:
                self._db.execute(
                    "DELETE FROM objects WHERE grp=? AND kind=? AND namespace=? AND name=?", key
                )
            else:
                self._db.execute(
                    "INSERT OR REPLACE INTO objects (grp, kind, namespace, name, rv, body) VALUES (?,?,?,?,?,?)",
                    (*key, rv, body),
                )
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('rv', ?)", (str(rv),))
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        self._rv = rv
        if old is not None:
            self._unindex(key, old)
            self._encoded.pop(id(old), None)
        if new is not None:
            self._index(key, new)
            self._encoded[id(new)] = body  # type: ignore[assignment]
        last = new
        if new is None and old is not None:
            last = {**old, "metadata": {**old["metadata"], "resourceVersion": str(rv)}}
        # a deletion's event carries the last state, stamped with the deletion's resourceVersion
        self._bus.publish(Change(rv, (key[0], key[1]), last if new is None else old, new))
        return last

    # ------------------------------------------------------------------ lookups
    def _type(self, api_version: str, kind: str) -> ResourceType:
        if not isinstance(api_version, str) or not isinstance(kind, str):
            raise errors.bad_request("apiVersion and kind must be strings")
        return self.registry.lookup_kind(api_version, kind)

    def _key(self, rt: ResourceType, name: str, namespace: str | None) -> Key:
        if rt.namespaced:
            if not namespace:
                raise errors.bad_request(f"{rt.kind} is namespaced: a namespace is required")
            return (rt.group, rt.kind, namespace, name)
        return (rt.group, rt.kind, "", name)

    def _find(self, key: Key) -> dict | None:
        return self._objects.get((key[0], key[1]), {}).get(key[2], {}).get(key[3])

    def _must(self, rt: ResourceType, key: Key) -> dict:
        obj = self._find(key)
        if obj is None:
            raise errors.not_found(rt.plural, rt.group, key[3])
        return obj

    @staticmethod
    def present(obj: dict, rt: ResourceType) -> dict:
        """The stored object as seen through one served version (conversion strategy None)."""
        if obj.get("apiVersion") == rt.api_version:
            return obj
        return {**obj, "apiVersion": rt.api_version}

    def encoded(self, obj: dict) -> str:
        """The JSON text of an object from :meth:`list_raw`/:meth:`get_raw` (cached for stored objects)."""
        cached = self._encoded.get(id(obj))
        return cached if cached is not None else _json(obj)

    def _now(self) -> str:
        return objectmeta.now(self._clock)

    # ------------------------------------------------------------------ validation
    def _validate(self, obj: dict, rt: ResourceType, old: dict | None = None) -> None:
        meta = obj["metadata"]
        causes = objectmeta.name_causes(rt, meta["name"]) if old is None else []
        causes += objectmeta.label_causes(meta)
        if old is None and rt.namespaced and meta.get("namespace"):
            causes += objectmeta.name_causes(
                self.registry.lookup_kind("v1", "Namespace"), meta["namespace"], "metadata.namespace"
            )
        for n, ref in enumerate(meta.get("ownerReferences") or []):
            for field in ("apiVersion", "kind", "name", "uid"):
                if not ref.get(field):
                    causes.append(errors.field_cause(
                        f"metadata.ownerReferences[{n}].{field}", "Required value", "FieldValueRequired"))
        if (rt.group, rt.kind) == CRD_GK:
            causes += _crd_causes(obj)
        if not causes:
            causes = self._external_causes(obj)
        if causes:
            raise errors.invalid(rt.kind, rt.group, meta.get("name", ""), causes)

    def _external_causes(self, obj: dict) -> list[dict[str, str]]:
        validation = validation_module()
        validate = getattr(validation, "validate_object", None)
        if validate is None:
            return []
        causes = list(validate(obj, self.registry) or [])
        check = getattr(validation, "structural_problems", None)
        if check is not None and (obj.get("apiVersion"), obj.get("kind")) == (
            "apiextensions.k8s.io/v1", "CustomResourceDefinition"
        ):
            for n, ver in enumerate((obj.get("spec") or {}).get("versions") or []):
                schema = ((ver or {}).get("schema") or {}).get("openAPIV3Schema")
                if schema is not None:
                    for problem in check(schema, f"spec.versions[{n}].schema.openAPIV3Schema"):
                        field, _, message = problem.partition(": ")
                        causes.append(errors.field_cause(field, message))
        return causes

    def _prune(self, obj: dict) -> dict:
        """Drop fields no schema declares (kube-apiserver's decoding and CRD pruning), then fill CRD schema
        defaults, as kube-apiserver stores custom resources."""
        module = validation_module()
        prune = getattr(module, "prune", None)
        defaults = getattr(module, "apply_defaults", None)
        if prune is not None:
            obj = prune(obj, self.registry)
        if defaults is not None:
            obj = defaults(obj, self.registry)
        return obj

    # ------------------------------------------------------------------ admission
    def register_validating_webhook(self, webhook: ValidatingWebhook) -> Callable[[], None]:
        """Have ``webhook`` judge matching creates/updates/patches (dry-run too) before they are stored.

        Returns the function that unregisters it. A denial is raised as the 4xx ``ApiError`` kube-apiserver
        returns for a webhook denial, and nothing of the request is applied.
        """
        return self.admission.register(webhook)

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

    # ------------------------------------------------------------------ create
    async def create(self, obj: dict, *, dry_run: bool = False, field_manager: str | None = None) -> dict:
        """Create ``obj`` (namespaced kinds take ``metadata.namespace``); returns the stored object."""
        objectmeta.check_shape(obj)
        rt = self._type(obj["apiVersion"], obj["kind"])
        if rt.virtual:
            return self._review(clone(obj), rt)
        return clone(self._create(obj, dry_run=dry_run))

    def _create(self, obj: dict, *, dry_run: bool = False) -> dict:
        objectmeta.check_shape(obj)
        rt = self._type(obj["apiVersion"], obj["kind"])
        new = self._prune(clone(obj))
        if not isinstance(new.get("metadata"), dict):
            new["metadata"] = {}
        meta = new["metadata"]
        if meta.get("resourceVersion"):
            raise errors.bad_request(
                "metadata.resourceVersion should not be set on objects to be created (remove it)"
            )
        if rt.namespaced:
            ns = meta.get("namespace")
            if not ns:
                raise errors.invalid(rt.kind, rt.group, meta.get("name", ""), [
                    errors.field_cause("metadata.namespace", "Required value", "FieldValueRequired")])
            namespace = self._find(("", "Namespace", "", ns))
            if namespace is None:
                raise errors.not_found("namespaces", "", ns)
            if namespace["metadata"].get("deletionTimestamp"):
                raise errors.forbidden(
                    f'{rt.plural}{"." + rt.group if rt.group else ""} "{meta.get("name") or meta.get("generateName", "")}" '
                    f"is forbidden: unable to create new content in namespace {ns} because it is being terminated"
                )
        else:
            meta.pop("namespace", None)
        if not meta.get("name"):
            if meta.get("generateName"):
                for _ in range(8):
                    candidate = objectmeta.generate_name(meta["generateName"])
                    if self._find(self._key(rt, candidate, meta.get("namespace"))) is None:
                        break
                meta["name"] = candidate
            else:
                raise errors.invalid(rt.kind, rt.group, "", [errors.field_cause(
                    "metadata.name", "Required value: name or generateName is required", "FieldValueRequired")])
        key = self._key(rt, meta["name"], meta.get("namespace"))
        self._validate(new, rt)
        for field in ("deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            meta.pop(field, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = self._now()
        if objectmeta.tracks_generation(rt):
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        objectmeta.apply_create_defaults(new, rt)
        if (rt.group, rt.kind) == CRD_GK:
            new["status"] = _crd_status(new, self._now())
        # kube-apiserver: validation, then validating admission, then storage (which answers AlreadyExists)
        self._admit("CREATE", rt, new, None, "", dry_run)
        if self._find(key) is not None:
            raise errors.already_exists(rt.plural, rt.group, meta["name"])
        if dry_run:
            return new
        stored = self._commit(key, None, new)
        assert stored is not None
        if (rt.group, rt.kind) == CRD_GK:
            self.registry.register_crd(stored)
        self._collect_if_orphaned(key, stored)
        return stored

    def create_raw(self, obj: dict, *, dry_run: bool = False) -> dict:
        """Like :meth:`create` for stored kinds, returning the stored object itself (never mutate it)."""
        rt = self._type(str(obj.get("apiVersion", "")), str(obj.get("kind", ""))) if isinstance(obj, dict) else None
        created = self._create(obj, dry_run=dry_run)
        return self.present(created, rt) if rt else created

    def update_raw(self, obj: dict, *, subresource: str | None = None, dry_run: bool = False) -> dict:
        """Like :meth:`update` / :meth:`update_status`, without the copy (never mutate the result)."""
        return self._update(obj, subresource=subresource, dry_run=dry_run)

    def exists(self, rt: ResourceType, name: str, namespace: str | None) -> bool:
        return self._find(self._key(rt, name, namespace)) is not None

    # ------------------------------------------------------------------ read
    async def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict:
        rt = self._type(api_version, kind)
        return clone(self.present(self._must(rt, self._key(rt, name, namespace)), rt))

    def get_raw(self, rt: ResourceType, name: str, namespace: str | None) -> dict:
        """The stored object itself (no copy; the HTTP layer only serialises it). Never mutate it."""
        return self.present(self._must(rt, self._key(rt, name, namespace)), rt)

    async def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> tuple[list[dict], str]:
        """Objects sorted by namespace/name, and the list's resourceVersion (to start a watch from)."""
        rt = self._type(api_version, kind)
        items, rv, _ = self.list_raw(rt, namespace, label_selector, field_selector)
        return [clone(i) for i in items], rv

    def list_raw(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        *,
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> tuple[list[dict], str, str | None]:
        """Like :meth:`list` but without copies, with ``limit``/``continue`` paging; returns the continue token."""
        labels = sel.parse_label_selector(label_selector)
        fields = sel.parse_field_selector(field_selector, rt.group, rt.kind)
        start: tuple[str, str] | None = None
        if continue_token:
            try:
                data = json.loads(base64.urlsafe_b64decode(continue_token.encode()))
                start = (data["ns"], data["name"])
            except (ValueError, KeyError, TypeError):
                raise errors.bad_request(
                    "invalid continue token: pass the metadata.continue value of the previous page unchanged"
                ) from None
        by_ns = self._objects.get(rt.group_kind, {})
        spaces = [namespace] if namespace else sorted(by_ns)
        items: list[dict] = []
        token = None
        for ns in spaces:
            bucket = by_ns.get(ns)
            if not bucket:
                continue
            for name in sorted(bucket):
                if start is not None and (ns, name) <= start:
                    continue
                obj = bucket[name]
                if labels and not sel.labels_match(labels, obj):
                    continue
                if fields and not sel.fields_match(fields, obj):
                    continue
                if limit and len(items) >= limit:
                    last = items[-1]["metadata"]
                    token = base64.urlsafe_b64encode(
                        _json({"ns": last.get("namespace", ""), "name": last["name"]}).encode()
                    ).decode()
                    return items, str(self._rv), token
                items.append(self.present(obj, rt))
        return items, str(self._rv), token

    # ------------------------------------------------------------------ update
    async def update(self, obj: dict, *, dry_run: bool = False) -> dict:
        """Replace an object; ``metadata.resourceVersion``, when set, must be the stored one (409 otherwise).
        Status is ignored for kinds with a status subresource (use :meth:`update_status`)."""
        return clone(self._update(obj, dry_run=dry_run))

    async def update_status(self, obj: dict, *, dry_run: bool = False) -> dict:
        """Write only ``status`` (spec and metadata changes in ``obj`` are ignored)."""
        return clone(self._update(obj, subresource="status", dry_run=dry_run))

    def _update(self, obj: dict, *, subresource: str | None = None, dry_run: bool = False,
                admit_as: str | None = None) -> dict:
        """``admit_as``: the subresource webhooks see (``scale`` writes land here as whole-object updates)."""
        objectmeta.check_shape(obj)
        rt = self._type(obj["apiVersion"], obj["kind"])
        if rt.virtual:
            raise errors.method_not_allowed(f"{rt.plural} can only be created")
        if subresource == "status" and not rt.has("status"):
            raise errors.resource_not_found()
        meta_in = obj.get("metadata") or {}
        if not meta_in.get("name"):
            raise errors.invalid(rt.kind, rt.group, "", [
                errors.field_cause("metadata.name", "Required value", "FieldValueRequired")])
        key = self._key(rt, meta_in["name"], meta_in.get("namespace") if rt.namespaced else None)
        current = self._must(rt, key)
        cur_meta = current["metadata"]
        rv = meta_in.get("resourceVersion")
        if rv and rv != cur_meta["resourceVersion"]:
            raise errors.conflict(rt.plural, rt.group, meta_in["name"])
        if meta_in.get("uid") and meta_in["uid"] != cur_meta["uid"]:
            raise errors.conflict(
                rt.plural, rt.group, meta_in["name"],
                f'Precondition failed: UID in precondition: {meta_in["uid"]}, UID in object meta: {cur_meta["uid"]}',
            )
        if subresource == "status":
            new = clone(current)
            if obj.get("status") is None:
                new.pop("status", None)
            else:
                new["status"] = self._prune({**current, "status": clone(obj["status"])}).get("status")
            if "managedFields" in meta_in:
                new["metadata"]["managedFields"] = clone(meta_in["managedFields"])
        else:
            new = self._prune(clone(obj))
            new["apiVersion"] = current["apiVersion"]
            meta = new.setdefault("metadata", {})
            for field in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                          "generation", "namespace"):
                if field in cur_meta:
                    meta[field] = cur_meta[field]
                else:
                    meta.pop(field, None)
            if rt.has("status") or (rt.group, rt.kind) == CRD_GK:
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
            if objectmeta.tracks_generation(rt) and _spec_part(new) != _spec_part(current):
                meta["generation"] = int(cur_meta.get("generation", 1)) + 1
            self._validate(new, rt, old=current)
        new["metadata"]["resourceVersion"] = cur_meta["resourceVersion"]
        # admission runs before storage notices a no-op, as in kube-apiserver's update path
        self._admit("UPDATE", rt, new, current, admit_as if admit_as is not None else subresource or "", dry_run)
        if new == current:
            return self.present(current, rt)  # no-op writes keep the resourceVersion, as kube-apiserver does
        if dry_run:
            return self.present(new, rt)
        stored = self._commit(key, current, new)
        assert stored is not None
        if (rt.group, rt.kind) == CRD_GK:
            self.registry.register_crd(stored)
        if stored["metadata"].get("deletionTimestamp") and not stored["metadata"].get("finalizers"):
            self._finalize(key)
        elif stored["metadata"].get("deletionTimestamp"):
            self._progress_foreground(key)
        return self.present(stored, rt)

    # ------------------------------------------------------------------ patch
    async def patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None,
        patch: Any,
        patch_type: str,
        subresource: str | None = None,
        *,
        dry_run: bool = False,
        field_manager: str | None = None,
    ) -> dict:
        """Apply a patch (``application/merge-patch+json`` etc., or the short names merge/json/strategic/apply)."""
        rt = self._type(api_version, kind)
        return clone(self.patch_raw(rt, name, namespace, patch, patch_type, subresource,
                                    dry_run=dry_run, field_manager=field_manager))

    def patch_raw(
        self,
        rt: ResourceType,
        name: str,
        namespace: str | None,
        patch: Any,
        patch_type: str,
        subresource: str | None = None,
        *,
        dry_run: bool = False,
        field_manager: str | None = None,
    ) -> dict:
        kind_type = patching.normalize_type(patch_type)
        body = patching.parse_body(patch, kind_type)
        if kind_type == patching.STRATEGIC and rt.crd:
            raise errors.unsupported_media_type(
                patch_type + " (strategic merge patch is not supported for custom resources; use merge or json)",
                [patching.JSON, patching.MERGE, patching.APPLY],
            )
        key = self._key(rt, name, namespace)
        current = self._find(key)
        if subresource == "scale":
            scale = self.scale_of(rt, self._must(rt, key))
            if kind_type == patching.APPLY:
                new_scale = patching.apply_patch(scale, body, field_manager or "unknown", "autoscaling/v1")
            else:
                new_scale = patching.apply(scale, body, kind_type)
            return self.write_scale(rt, name, namespace, new_scale, dry_run=dry_run)
        if kind_type == patching.APPLY:
            if not field_manager:
                raise errors.bad_request("fieldManager is required for apply patches (e.g. ?fieldManager=my-tool)")
            objectmeta.check_shape(body)
            if body.get("kind") != rt.kind or body.get("apiVersion") != rt.api_version:
                raise errors.bad_request(
                    f"the apply patch is a {body.get('kind')} {body.get('apiVersion')} but the URL names "
                    f"{rt.kind} {rt.api_version}"
                )
            if (body.get("metadata") or {}).get("name", name) != name:
                raise errors.bad_request("the name in the apply patch does not match the name in the URL")
            if current is None:
                if subresource:
                    raise errors.not_found(rt.plural, rt.group, name)
                created = patching.apply_patch(None, body, field_manager, rt.api_version)
                created["metadata"]["name"] = name
                if rt.namespaced:
                    created["metadata"]["namespace"] = namespace
                return self.present(self._create(created, dry_run=dry_run), rt)
            new = patching.apply_patch(current, body, field_manager, rt.api_version)
        else:
            if current is None:
                raise errors.not_found(rt.plural, rt.group, name)
            new = patching.apply(current, body, kind_type)
        if not isinstance(new.get("metadata"), dict):
            raise errors.ApiError(422, "Invalid", "the patch removed metadata; objects must keep it")
        meta, cur_meta = new["metadata"], current["metadata"]
        if meta.get("name") != cur_meta["name"] or meta.get("namespace") != cur_meta.get("namespace"):
            raise errors.bad_request("metadata.name and metadata.namespace cannot be changed by a patch")
        if new.get("kind") != current["kind"] or new.get("apiVersion") != current["apiVersion"]:
            new["kind"], new["apiVersion"] = current["kind"], current["apiVersion"]
        patched_rv = _patched_rv(body, kind_type)
        meta["resourceVersion"] = patched_rv or cur_meta["resourceVersion"]
        if subresource == "status":
            return self._update(new, subresource="status", dry_run=dry_run)
        if subresource:
            raise errors.resource_not_found()
        return self._update(new, dry_run=dry_run)

    # ------------------------------------------------------------------ scale subresource
    def scale_of(self, rt: ResourceType, obj: dict) -> dict:
        """The ``autoscaling/v1`` Scale view of an object whose kind has the scale subresource."""
        if not rt.has("scale") or not rt.scale:
            raise errors.resource_not_found()
        spec_replicas = _get_path(obj, rt.scale["specReplicasPath"])
        status_replicas = _get_path(obj, rt.scale["statusReplicasPath"])
        if rt.crd:
            selector = _get_path(obj, rt.scale.get("labelSelectorPath", "")) if rt.scale.get("labelSelectorPath") else None
        else:
            selector = sel.format_selector((obj.get("spec") or {}).get("selector"))
        meta = obj["metadata"]
        scale: dict[str, Any] = {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                         if k in meta},
            "spec": {"replicas": int(spec_replicas or 0)} if spec_replicas is not None else {},
            "status": {"replicas": int(status_replicas or 0)},
        }
        if selector:
            scale["status"]["selector"] = selector
        return scale

    async def get_scale(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict:
        rt = self._type(api_version, kind)
        return self.scale_of(rt, self._must(rt, self._key(rt, name, namespace)))

    async def update_scale(
        self, api_version: str, kind: str, name: str, namespace: str | None, scale: dict, *, dry_run: bool = False
    ) -> dict:
        rt = self._type(api_version, kind)
        return self.write_scale(rt, name, namespace, scale, dry_run=dry_run)

    def write_scale(self, rt: ResourceType, name: str, namespace: str | None, scale: dict, *, dry_run: bool = False) -> dict:
        key = self._key(rt, name, namespace)
        current = self._must(rt, key)
        self.scale_of(rt, current)
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise errors.invalid("Scale", "autoscaling", name, [errors.field_cause(
                "spec.replicas", f"Invalid value: {replicas!r}: must be a non-negative integer")])
        rv = (scale.get("metadata") or {}).get("resourceVersion")
        if rv and rv != current["metadata"]["resourceVersion"]:
            raise errors.conflict(rt.plural, rt.group, name)
        new = clone(current)
        assert rt.scale is not None
        _set_path(new, rt.scale["specReplicasPath"], replicas)
        return self.scale_of(rt, self._update(new, dry_run=dry_run, admit_as="scale"))

    # ------------------------------------------------------------------ delete, finalizers, GC
    async def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None = None,
        propagation: str = "Background",
        *,
        dry_run: bool = False,
        preconditions: dict | None = None,
        grace_period_seconds: int | None = None,
    ) -> dict | None:
        """Delete an object; returns its last state (with ``deletionTimestamp`` while finalizers hold it)."""
        rt = self._type(api_version, kind)
        result = self.delete_raw(rt, name, namespace, propagation, dry_run=dry_run, preconditions=preconditions,
                                 grace_period_seconds=grace_period_seconds)
        return clone(result)

    def delete_raw(
        self,
        rt: ResourceType,
        name: str,
        namespace: str | None,
        propagation: str | None = "Background",
        *,
        dry_run: bool = False,
        preconditions: dict | None = None,
        grace_period_seconds: int | None = None,
    ) -> dict:
        if rt.virtual:
            raise errors.method_not_allowed(f"{rt.plural} can only be created")
        propagation = propagation or "Background"
        if propagation not in PROPAGATIONS:
            raise errors.bad_request(
                f"invalid propagationPolicy {propagation!r}: use one of {', '.join(PROPAGATIONS)}"
            )
        key = self._key(rt, name, namespace)
        current = self._must(rt, key)
        meta = current["metadata"]
        for field in ("uid", "resourceVersion"):
            want = (preconditions or {}).get(field)
            if want and want != meta.get(field):
                raise errors.conflict(
                    rt.plural, rt.group, name,
                    f"Precondition failed: {field} in precondition: {want}, {field} in object meta: {meta.get(field)}",
                )
        if dry_run:
            return self.present(current, rt)
        if rt.group_kind == NAMESPACE_GK:
            return self._delete_namespace(key, current)
        if propagation == "Orphan":
            self._orphan_dependents(meta["uid"])
        finalizers = list(meta.get("finalizers") or [])
        if propagation == "Foreground" and self._dependents.get(meta["uid"]) and FOREGROUND not in finalizers:
            finalizers.append(FOREGROUND)
        graceful = (
            rt.group_kind == POD_GK and self.graceful_pod_deletion and grace_period_seconds != 0
            and (current.get("spec") or {}).get("nodeName")
        )
        if (rt.group, rt.kind) == CRD_GK:
            self._delete_instances(current)
            if self._instances_left(current):
                finalizers.append("customresourcecleanup.apiextensions.k8s.io")
        if finalizers or graceful:
            if meta.get("deletionTimestamp") and finalizers == list(meta.get("finalizers") or []):
                return self.present(current, rt)
            new = clone(current)
            new["metadata"]["finalizers"] = finalizers
            if not finalizers:
                new["metadata"].pop("finalizers")
            if not meta.get("deletionTimestamp"):
                new["metadata"]["deletionTimestamp"] = self._now()
                grace = grace_period_seconds
                if grace is None:
                    grace = int((current.get("spec") or {}).get("terminationGracePeriodSeconds", 30)) if graceful else 0
                new["metadata"]["deletionGracePeriodSeconds"] = grace
            stored = self._commit(key, current, new)
            assert stored is not None
            if FOREGROUND in finalizers:
                for dep in sorted(self._dependents.get(meta["uid"], ())):
                    self._delete_key(dep, "Background")
                self._progress_foreground(key)
            return self.present(self._find(key) or stored, rt)
        last = self._finalize(key)
        return self.present(last or current, rt)

    def _delete_key(self, key: Key, propagation: str) -> None:
        obj = self._find(key)
        if obj is None:
            return
        rt = self.registry.storage_type(key[0], key[1])
        if rt is None:
            self._finalize(key)
            return
        try:
            self.delete_raw(rt, key[3], key[2] or None, propagation)
        except errors.ApiError as exc:
            if exc.code != 404:
                raise

    def _finalize(self, key: Key) -> dict | None:
        """Remove an object for good, then let its owners, dependents and namespace react."""
        obj = self._find(key)
        if obj is None:
            return None
        last = self._commit(key, obj, None)
        gk = (key[0], key[1])
        if gk == CRD_GK:
            self.registry.unregister_crd(key[3])
        uid = obj["metadata"]["uid"]
        for dep in sorted(self._dependents.get(uid, ())):
            dep_obj = self._find(dep)
            if dep_obj is not None and self._owners_gone(dep_obj):
                self._delete_key(dep, "Background")
        for ref in obj["metadata"].get("ownerReferences") or []:
            owner_key = self._by_uid.get(ref.get("uid", ""))
            if owner_key is not None:
                self._progress_foreground(owner_key)
        if key[2]:
            ns_key = ("", "Namespace", "", key[2])
            namespace = self._find(ns_key)
            if namespace is not None and namespace["metadata"].get("deletionTimestamp"):
                self._progress_namespace(ns_key)
        if key[0] and gk != CRD_GK:
            self._progress_crd(gk)
        return last

    def _owners_gone(self, obj: dict) -> bool:
        refs = obj["metadata"].get("ownerReferences") or []
        return bool(refs) and all(ref.get("uid") not in self._by_uid for ref in refs)

    def _orphan_dependents(self, uid: str) -> None:
        for dep in sorted(self._dependents.get(uid, ())):
            obj = self._find(dep)
            if obj is None:
                continue
            new = clone(obj)
            refs = [r for r in new["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
            if refs:
                new["metadata"]["ownerReferences"] = refs
            else:
                new["metadata"].pop("ownerReferences", None)
            self._commit(dep, obj, new)

    def _progress_foreground(self, key: Key) -> None:
        """A foreground-deleting owner loses its finalizer once its dependents are gone."""
        obj = self._find(key)
        if obj is None:
            return
        meta = obj["metadata"]
        if not meta.get("deletionTimestamp") or FOREGROUND not in (meta.get("finalizers") or []):
            return
        if self._dependents.get(meta["uid"]):
            return
        new = clone(obj)
        new["metadata"]["finalizers"] = [f for f in meta["finalizers"] if f != FOREGROUND]
        if not new["metadata"]["finalizers"]:
            new["metadata"].pop("finalizers")
        self._commit(key, obj, new)
        if not new["metadata"].get("finalizers"):
            self._finalize(key)

    def _collect_if_orphaned(self, key: Key, obj: dict) -> None:
        """A dependent created after all its owners were deleted is collected too (asynchronously, as the
        garbage collector would)."""
        if not self._owners_gone(obj):
            return
        uid = obj["metadata"]["uid"]

        async def collect() -> None:
            current = self._find(key)
            if current is not None and current["metadata"]["uid"] == uid and self._owners_gone(current):
                self._delete_key(key, "Background")

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._delete_key(key, "Background")
            return
        task = loop.create_task(collect())
        self._gc_tasks.add(task)
        task.add_done_callback(self._gc_tasks.discard)

    # namespaces
    def _delete_namespace(self, key: Key, current: dict) -> dict:
        rt = self.registry.lookup_kind("v1", "Namespace")
        if not current["metadata"].get("deletionTimestamp"):
            new = clone(current)
            new["metadata"]["deletionTimestamp"] = self._now()
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            new["status"] = {**(new.get("status") or {}), "phase": "Terminating"}
            self._commit(key, current, new)
            ns = key[3]
            for gk, by_ns in list(self._objects.items()):
                for name in sorted(by_ns.get(ns, {})):
                    self._delete_key((gk[0], gk[1], ns, name), "Background")
            self._progress_namespace(key)
        return self.present(self._find(key) or current, rt)

    def _progress_namespace(self, key: Key) -> None:
        ns = key[3]
        if any(by_ns.get(ns) for by_ns in self._objects.values()):
            return
        namespace = self._find(key)
        if namespace is not None and not namespace["metadata"].get("finalizers"):
            self._finalize(key)

    # CRDs
    def _delete_instances(self, crd: dict) -> None:
        gk = (crd["spec"]["group"], crd["spec"]["names"]["kind"])
        for ns, bucket in list(self._objects.get(gk, {}).items()):
            for name in sorted(bucket):
                self._delete_key((gk[0], gk[1], ns, name), "Background")

    def _instances_left(self, crd: dict) -> bool:
        gk = (crd["spec"]["group"], crd["spec"]["names"]["kind"])
        return any(self._objects.get(gk, {}).values())

    def _progress_crd(self, gk: GroupKind) -> None:
        if any(self._objects.get(gk, {}).values()):
            return
        for crd in list(self._objects.get(CRD_GK, {}).get("", {}).values()):
            spec = crd.get("spec") or {}
            if (spec.get("group"), (spec.get("names") or {}).get("kind")) != gk:
                continue
            fin = crd["metadata"].get("finalizers") or []
            if crd["metadata"].get("deletionTimestamp") and "customresourcecleanup.apiextensions.k8s.io" in fin:
                new = clone(crd)
                new["metadata"]["finalizers"] = [f for f in fin if f != "customresourcecleanup.apiextensions.k8s.io"]
                key = (*CRD_GK, "", crd["metadata"]["name"])
                self._commit(key, crd, new)
                if not new["metadata"]["finalizers"]:
                    self._finalize(key)

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
    ) -> AsyncIterator[WatchEvent]:
        """Replay (current objects as ADDED when ``resource_version`` is unset or "0", otherwise the events
        after it — 410 Gone when the history window no longer reaches back that far), then stream."""
        rt = self._type(api_version, kind)

        async def events() -> AsyncIterator[WatchEvent]:
            stream = self.watch_raw(rt, namespace, resource_version, label_selector, field_selector,
                                    allow_bookmarks=allow_bookmarks, bookmark_interval=bookmark_interval, copy=copy)
            try:
                async for event in stream:
                    yield event
            finally:
                await stream.aclose()

        return events()

    def watch_raw(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        *,
        allow_bookmarks: bool = False,
        bookmark_interval: float = 60.0,
        copy: bool = False,
    ) -> WatchStream:
        """Open a watch now (errors such as 410 Gone raise here, before any event); close it with ``aclose()``."""
        labels = sel.parse_label_selector(label_selector)
        fields = sel.parse_field_selector(field_selector, rt.group, rt.kind)

        def matches(obj: dict) -> bool:
            if namespace and obj["metadata"].get("namespace") != namespace:
                return False
            return sel.labels_match(labels, obj) and sel.fields_match(fields, obj)

        if resource_version in (None, "", "0"):
            objs = [o for by_name in self._objects.get(rt.group_kind, {}).values() for o in by_name.values()]
            objs.sort(key=lambda o: int(o["metadata"]["resourceVersion"]))
            initial = [WatchEvent("ADDED", o) for o in objs if matches(o)]
        else:
            try:
                since = int(resource_version)
            except (TypeError, ValueError):
                raise errors.bad_request(
                    f"invalid resourceVersion {resource_version!r}: pass the metadata.resourceVersion of a "
                    "list or object"
                ) from None
            if since < self._bus.floor_rv:
                raise errors.gone(f"too old resource version: {since} ({self._bus.floor_rv})")
            initial = self._bus.since(since, rt.group_kind, matches)
        sub = self._bus.subscribe(rt.group_kind, matches)
        return WatchStream(self, rt, initial, sub, allow_bookmarks, bookmark_interval, copy)

    # ------------------------------------------------------------------ reviews (create-only kinds)
    def _review(self, obj: dict, rt: ResourceType) -> dict:
        """SelfSubject*Review and TokenReview: answered from the lab's single admin identity, never stored."""
        obj.setdefault("metadata", {})
        obj["metadata"].setdefault("creationTimestamp", None)
        spec = obj.get("spec") or {}
        if rt.kind == "SelfSubjectAccessReview":
            _check_access_review(spec)
            obj["status"] = {"allowed": True,
                             "reason": f"the lab's admin user {LAB_USER!r} (kubeconfig bearer token) is in group "
                                       f"{LAB_GROUPS[0]!r}, which may do everything"}
        elif rt.kind == "SelfSubjectRulesReview":
            if not spec.get("namespace"):
                raise errors.bad_request("no namespace on request")
            obj["status"] = {
                "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                "incomplete": False,
            }
        elif rt.kind == "SelfSubjectReview":
            obj.pop("spec", None)
            obj["status"] = {"userInfo": _lab_user_info()}
        elif rt.kind == "TokenReview":
            token = spec.get("token") or ""
            ok = bool(self.token_reviewer and self.token_reviewer(token))
            obj["status"] = {"authenticated": ok, "audiences": []}
            if ok:
                obj["status"]["user"] = _lab_user_info()
            else:
                obj["status"]["error"] = "the token is not the lab's kubeconfig token"
        return obj


def _lab_user_info() -> dict:
    return {"username": LAB_USER, "groups": list(LAB_GROUPS)}


def _check_access_review(spec: dict) -> None:
    """kube-apiserver's validation: exactly one of resourceAttributes / nonResourceAttributes."""
    resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if not resource and not non_resource:
        cause = errors.field_cause("spec.resourceAttributes", "Required value: exactly one of nonResourceAttributes "
                                   "or resourceAttributes must be specified", "FieldValueRequired")
    elif resource and non_resource:
        cause = errors.field_cause("spec.nonResourceAttributes", "Invalid value: cannot be specified in combination "
                                   "with resourceAttributes")
    else:
        return
    raise errors.invalid("SelfSubjectAccessReview", "authorization.k8s.io", "", [cause])


class WatchStream:
    """An open watch: replayed events first, then live ones (and BOOKMARKs when asked) until ``aclose()``."""

    def __init__(self, store: Store, rt: ResourceType, initial: list[WatchEvent], sub: Subscriber,
                 bookmarks: bool, interval: float, copy: bool) -> None:
        self._store, self._rt, self._sub = store, rt, sub
        self._pending = list(reversed(initial))
        self._bookmarks, self._interval, self._copy = bookmarks, interval, copy
        self._closed = False

    def __aiter__(self) -> WatchStream:
        return self

    async def __anext__(self) -> WatchEvent:
        if self._closed:
            raise StopAsyncIteration
        if self._pending:
            return self._out(self._pending.pop())
        if not self._bookmarks:
            return self._out(await self._sub.queue.get())
        # asyncio.wait, not wait_for: on Python 3.11 wait_for can swallow the cancellation of a closing watch
        get = asyncio.ensure_future(self._sub.queue.get())
        try:
            done, _ = await asyncio.wait({get}, timeout=self._interval)
        except BaseException:
            get.cancel()
            raise
        if done:
            return self._out(get.result())
        get.cancel()  # an event arriving just now stays queued (Queue.get takes it only when it resumes)
        return WatchEvent("BOOKMARK", {
            "kind": self._rt.kind, "apiVersion": self._rt.api_version,
            "metadata": {"resourceVersion": self._store.resource_version},
        })

    def _out(self, event: WatchEvent) -> WatchEvent:
        obj = self._store.present(event.object, self._rt)
        return WatchEvent(event.type, clone(obj) if self._copy else obj)

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._store._bus.unsubscribe(self._sub)


# ---------------------------------------------------------------------- helpers
def validation_module() -> Any:
    """The schema validation module (its own owner's); ``None`` where it is not there."""
    try:
        from llmd_lab.lab.apiserver import validation
    except ModuleNotFoundError as exc:
        if exc.name != "llmd_lab.lab.apiserver.validation":
            raise
        return None
    return validation


def _spec_part(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _patched_rv(body: Any, patch_type: str) -> str | None:
    if patch_type == patching.JSON:
        for op in body:
            if isinstance(op, dict) and op.get("path") == "/metadata/resourceVersion" and op.get("op") in ("add", "replace"):
                return str(op.get("value"))
        return None
    meta = body.get("metadata") if isinstance(body, dict) else None
    rv = meta.get("resourceVersion") if isinstance(meta, dict) else None
    return str(rv) if rv else None


def _split_path(path: str) -> list[str]:
    return [p for p in path.strip().lstrip(".").split(".") if p]


def _get_path(obj: dict, path: str) -> Any:
    cur: Any = obj
    for part in _split_path(path):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _set_path(obj: dict, path: str, value: Any) -> None:
    parts = _split_path(path)
    cur = obj
    for part in parts[:-1]:
        cur = cur.setdefault(part, {})
    cur[parts[-1]] = value


def _crd_causes(crd: dict) -> list[dict[str, str]]:
    spec = crd.get("spec")
    if not isinstance(spec, dict):
        return [errors.field_cause("spec", "Required value", "FieldValueRequired")]
    causes = []
    names = spec.get("names") or {}
    for field in ("plural", "kind"):
        if not names.get(field):
            causes.append(errors.field_cause(f"spec.names.{field}", "Required value", "FieldValueRequired"))
    if not spec.get("group"):
        causes.append(errors.field_cause("spec.group", "Required value", "FieldValueRequired"))
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        causes.append(errors.field_cause(
            "spec.scope", f'Unsupported value: "{spec.get("scope")}": supported values: "Cluster", "Namespaced"',
            "FieldValueNotSupported"))
    versions = spec.get("versions")
    if not isinstance(versions, list) or not versions:
        causes.append(errors.field_cause("spec.versions", "Required value: must have exactly one version marked as storage version", "FieldValueRequired"))
    elif sum(1 for v in versions if isinstance(v, dict) and v.get("storage")) != 1:
        causes.append(errors.field_cause("spec.versions", "Invalid value: must have exactly one version marked as storage version"))
    elif not all(isinstance(v, dict) and v.get("name") for v in versions):
        causes.append(errors.field_cause("spec.versions[].name", "Required value", "FieldValueRequired"))
    name = (crd.get("metadata") or {}).get("name")
    if names.get("plural") and spec.get("group") and name != f"{names['plural']}.{spec['group']}":
        causes.append(errors.field_cause(
            "metadata.name", f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group'))
    return causes


def _crd_status(crd: dict, now: str) -> dict:
    names = crd["spec"]["names"]
    accepted = {k: names[k] for k in ("plural", "singular", "shortNames", "kind", "listKind", "categories") if k in names}
    accepted.setdefault("singular", names["kind"].lower())
    accepted.setdefault("listKind", names["kind"] + "List")
    return {
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
             "message": "no conflicts found", "lastTransitionTime": now},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted", "lastTransitionTime": now},
        ],
        "acceptedNames": accepted,
        "storedVersions": [v["name"] for v in crd["spec"]["versions"] if v.get("storage")],
    }
