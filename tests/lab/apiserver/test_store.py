"""The in-process Store: what controllers rely on (docs/architecture.md "API server store")."""

from __future__ import annotations

import asyncio

import pytest

from llmd_lab.lab.apiserver.errors import ApiError
from llmd_lab.lab.apiserver.store import Store

pytestmark = pytest.mark.anyio


def cm(name: str, ns: str = "default", **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns, "labels": labels},
            "data": {"k": "v"}}


def deploy(name: str, replicas: int = 1, ns: str = "default") -> dict:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": "img"}]}}},
    }


CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com", "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
        "versions": [{"name": "v1", "served": True, "storage": True,
                      "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                      "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas",
                                                              "statusReplicasPath": ".status.replicas"}}}],
    },
}


async def test_create_get_list_fill_server_fields(store):
    created = await store.create(cm("a", app="x"))
    meta = created["metadata"]
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z") and int(meta["resourceVersion"]) > 0
    assert "generation" not in meta  # ConfigMaps do not track generation
    got = await store.get("v1", "ConfigMap", "a", "default")
    assert got == created
    got["data"]["k"] = "mutated"  # callers get copies
    assert (await store.get("v1", "ConfigMap", "a", "default"))["data"]["k"] == "v"
    await store.create(cm("b", app="y"))
    items, list_meta = await store.list("v1", "ConfigMap", "default", label_selector="app in (x,z)")
    assert [i["metadata"]["name"] for i in items] == ["a"]
    assert int(list_meta["resourceVersion"]) >= int(meta["resourceVersion"])


async def test_resource_versions_increase_globally(store):
    a = await store.create(cm("a"))
    b = await store.create(deploy("d"))
    assert int(b["metadata"]["resourceVersion"]) > int(a["metadata"]["resourceVersion"])


async def test_generate_name_and_duplicate_create(store):
    obj = cm("")
    obj["metadata"] = {"generateName": "web-", "namespace": "default"}
    one = await store.create(obj)
    two = await store.create(obj)
    assert one["metadata"]["name"].startswith("web-") and len(one["metadata"]["name"]) == 9
    assert one["metadata"]["name"] != two["metadata"]["name"]
    with pytest.raises(ApiError) as exc:
        await store.create(cm(one["metadata"]["name"]))
    assert exc.value.code == 409 and exc.value.reason == "AlreadyExists"


async def test_namespace_must_exist(store):
    with pytest.raises(ApiError) as exc:
        await store.create(cm("a", ns="nope"))
    assert exc.value.code == 404 and 'namespaces "nope" not found' in exc.value.message


async def test_generation_bumps_on_spec_only_and_status_subresource(store):
    d = await store.create(deploy("d"))
    assert d["metadata"]["generation"] == 1 and d["status"] == {}
    d["metadata"]["labels"] = {"x": "y"}
    d = await store.update(d)
    assert d["metadata"]["generation"] == 1
    d["spec"]["replicas"] = 3
    d["status"] = {"replicas": 99}  # ignored on the main resource
    d = await store.update(d)
    assert d["metadata"]["generation"] == 2 and d["status"] == {}
    d["status"] = {"replicas": 3}
    d["spec"]["replicas"] = 7  # ignored on /status
    d = await store.update_status(d)
    assert d["status"] == {"replicas": 3} and d["spec"]["replicas"] == 3 and d["metadata"]["generation"] == 2


async def test_stale_update_conflicts_and_noop_keeps_rv(store):
    a = await store.create(cm("a"))
    same = await store.update(a)
    assert same["metadata"]["resourceVersion"] == a["metadata"]["resourceVersion"]
    a2 = dict(a, data={"k": "2"})
    await store.update(a2)
    with pytest.raises(ApiError) as exc:
        await store.update(dict(a, data={"k": "3"}))
    assert exc.value.code == 409 and "the object has been modified" in exc.value.message


async def test_patch_types(store):
    await store.create(deploy("d"))
    d = await store.patch("apps/v1", "Deployment", "d", "default", {"metadata": {"labels": {"a": "b"}}}, "merge")
    assert d["metadata"]["labels"] == {"a": "b"}
    d = await store.patch("apps/v1", "Deployment", "d", "default",
                          {"spec": {"template": {"spec": {"containers": [{"name": "side", "image": "s"}]}}}},
                          "application/strategic-merge-patch+json")
    assert [c["name"] for c in d["spec"]["template"]["spec"]["containers"]] == ["c", "side"]
    d = await store.patch("apps/v1", "Deployment", "d", "default",
                          [{"op": "replace", "path": "/spec/replicas", "value": 4}], "json")
    assert d["spec"]["replicas"] == 4 and d["metadata"]["generation"] == 3
    with pytest.raises(ApiError) as exc:
        await store.patch("apps/v1", "Deployment", "d", "default",
                          [{"op": "test", "path": "/spec/replicas", "value": 5}], "json")
    assert exc.value.code == 422 and "test" in exc.value.message
    assert (await store.get("apps/v1", "Deployment", "d", "default"))["spec"]["replicas"] == 4


async def test_server_side_apply_creates_then_merges(store):
    obj = cm("applied")
    obj["data"] = {"a": "1"}
    out = await store.patch("v1", "ConfigMap", "applied", "default", obj, "apply", field_manager="ctl")
    assert out["data"] == {"a": "1"}
    assert out["metadata"]["managedFields"][0]["manager"] == "ctl"
    obj["data"] = {"b": "2"}
    out = await store.patch("v1", "ConfigMap", "applied", "default", obj, "apply", field_manager="ctl")
    assert out["data"] == {"a": "1", "b": "2"} and len(out["metadata"]["managedFields"]) == 1


async def test_scale_subresource(store):
    await store.create(deploy("d", 2))
    scale = await store.get_scale("apps/v1", "Deployment", "d", "default")
    assert scale["spec"]["replicas"] == 2 and scale["status"]["selector"] == "app=d"
    scale = await store.patch("apps/v1", "Deployment", "d", "default", {"spec": {"replicas": 5}}, "merge",
                              subresource="scale")
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 5
    assert (await store.get("apps/v1", "Deployment", "d", "default"))["spec"]["replicas"] == 5


async def test_finalizers_hold_deletion_until_removed(store):
    obj = cm("f")
    obj["metadata"]["finalizers"] = ["example.com/hold"]
    await store.create(obj)
    held = await store.delete("v1", "ConfigMap", "f", "default")
    assert held["metadata"]["deletionTimestamp"]
    got = await store.get("v1", "ConfigMap", "f", "default")
    got["metadata"]["finalizers"] = ["example.com/hold", "example.com/new"]
    with pytest.raises(ApiError) as exc:
        await store.update(got)
    assert exc.value.code == 422
    await store.patch("v1", "ConfigMap", "f", "default", {"metadata": {"finalizers": None}}, "merge")
    with pytest.raises(ApiError) as exc:
        await store.get("v1", "ConfigMap", "f", "default")
    assert exc.value.code == 404


def owned(obj: dict, owner: dict) -> dict:
    obj["metadata"]["ownerReferences"] = [{
        "apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]
    return obj


async def test_background_gc_removes_dependents_recursively(store):
    owner = await store.create(deploy("d"))
    rs = await store.create(owned({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                   "metadata": {"name": "d-1", "namespace": "default"},
                                   "spec": deploy("d")["spec"]}, owner))
    await store.create(owned(cm("pod-ish"), rs))
    await store.delete("apps/v1", "Deployment", "d", "default")
    items, _ = await store.list("v1", "ConfigMap", "default")
    assert items == []
    assert (await store.list("apps/v1", "ReplicaSet", "default"))[0] == []


async def test_orphan_and_foreground(store):
    owner = await store.create(cm("owner"))
    await store.create(owned(cm("child"), owner))
    await store.delete("v1", "ConfigMap", "owner", "default", propagation="Orphan")
    child = await store.get("v1", "ConfigMap", "child", "default")
    assert "ownerReferences" not in child["metadata"]

    owner = await store.create(cm("owner2"))
    held = owned(cm("held"), owner)
    held["metadata"]["finalizers"] = ["x/hold"]
    await store.create(held)
    out = await store.delete("v1", "ConfigMap", "owner2", "default", propagation="Foreground")
    assert "foregroundDeletion" in out["metadata"]["finalizers"]
    # the owner waits for its dependent, which waits for its finalizer
    assert (await store.get("v1", "ConfigMap", "owner2", "default"))["metadata"]["deletionTimestamp"]
    await store.patch("v1", "ConfigMap", "held", "default", {"metadata": {"finalizers": None}}, "merge")
    names = [i["metadata"]["name"] for i in (await store.list("v1", "ConfigMap", "default"))[0]]
    assert names == ["child"]


async def test_dependent_created_after_owner_deleted_is_collected(store):
    owner = await store.create(cm("gone"))
    await store.delete("v1", "ConfigMap", "gone", "default")
    await store.create(owned(cm("late"), owner))
    deadline = asyncio.get_running_loop().time() + 5
    while (await store.list("v1", "ConfigMap", "default"))[0]:
        assert asyncio.get_running_loop().time() < deadline, "late dependent was never collected"
        await asyncio.sleep(0.01)


async def test_namespace_deletion_removes_contents(store):
    await store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
    held = cm("held", ns="team")
    held["metadata"]["finalizers"] = ["x/hold"]
    await store.create(held)
    await store.create(cm("plain", ns="team"))
    ns = await store.delete("v1", "Namespace", "team")
    assert ns["status"]["phase"] == "Terminating"
    with pytest.raises(ApiError) as exc:
        await store.create(cm("new", ns="team"))
    assert exc.value.code == 403 and "being terminated" in exc.value.message
    assert [i["metadata"]["name"] for i in (await store.list("v1", "ConfigMap", "team"))[0]] == ["held"]
    await store.patch("v1", "ConfigMap", "held", "team", {"metadata": {"finalizers": None}}, "merge")
    with pytest.raises(ApiError):
        await store.get("v1", "Namespace", "team")


async def test_crd_registration_and_removal(store):
    crd = await store.create(CRD)
    conds = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conds == {"NamesAccepted": "True", "Established": "True"}
    w = await store.create({"apiVersion": "example.com/v1", "kind": "Widget",
                            "metadata": {"name": "w", "namespace": "default"}, "spec": {"replicas": 1},
                            "status": {"replicas": 9}})
    assert w["metadata"]["generation"] == 1 and "status" not in w
    scale = await store.patch("example.com/v1", "Widget", "w", "default", {"spec": {"replicas": 3}}, "merge",
                              subresource="scale")
    assert scale["spec"]["replicas"] == 3
    await store.delete("apiextensions.k8s.io/v1", "CustomResourceDefinition", "widgets.example.com")
    with pytest.raises(ApiError) as exc:
        await store.list("example.com/v1", "Widget")
    assert exc.value.code == 404


async def test_state_survives_reopen(tmp_path):
    path = tmp_path / "state.db"
    s = Store(path)
    await s.create(CRD)
    await s.create({"apiVersion": "example.com/v1", "kind": "Widget",
                    "metadata": {"name": "w", "namespace": "default"}})
    rv = s.resource_version
    s.close()
    s = Store(path)
    try:
        assert (await s.get("example.com/v1", "Widget", "w", "default"))["metadata"]["name"] == "w"
        assert s.resource_version == rv
        created = await s.create(cm("after"))
        assert int(created["metadata"]["resourceVersion"]) > int(rv)
    finally:
        s.close()


async def test_watch_replay_stream_selectors_and_gone():
    store = Store(":memory:", history=5)
    try:
        first = await store.create(cm("a", app="x"))
        watch = store.watch("v1", "ConfigMap", "default", label_selector="app=x")
        ev = await anext(watch)
        assert (ev.type, ev.object["metadata"]["name"]) == ("ADDED", "a")
        await store.create(cm("b", app="other"))  # filtered out
        await store.patch("v1", "ConfigMap", "a", "default", {"data": {"k": "2"}}, "merge")
        ev = await anext(watch)
        assert ev.type == "MODIFIED" and ev.object["data"] == {"k": "2"}
        await store.patch("v1", "ConfigMap", "a", "default", {"metadata": {"labels": {"app": "y"}}}, "merge")
        ev = await anext(watch)
        assert ev.type == "DELETED"  # left the selection
        await watch.aclose()

        resumed = store.watch("v1", "ConfigMap", "default", resource_version=first["metadata"]["resourceVersion"])
        types = [(await anext(resumed)).type for _ in range(3)]
        assert types == ["ADDED", "MODIFIED", "MODIFIED"]
        await resumed.aclose()

        for n in range(10):
            await store.create(cm(f"n{n}"))
        with pytest.raises(ApiError) as exc:  # refused when opened, before any event
            store.watch("v1", "ConfigMap", resource_version=first["metadata"]["resourceVersion"])
        assert exc.value.code == 410

        deleted = store.watch("v1", "ConfigMap", "default", resource_version=store.resource_version)
        await store.delete("v1", "ConfigMap", "n0", "default")
        ev = await anext(deleted)
        assert ev.type == "DELETED" and ev.object["data"] == {"k": "v"}
        await deleted.aclose()
    finally:
        store.close()


async def test_watch_bookmarks(store):
    watch = store.watch("v1", "ConfigMap", resource_version=store.resource_version, allow_bookmarks=True,
                        bookmark_interval=0.05)
    ev = await asyncio.wait_for(anext(watch), 5)
    assert ev.type == "BOOKMARK" and ev.object["metadata"]["resourceVersion"] == store.resource_version
    await watch.aclose()


async def test_field_selectors(store):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
           "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]}}
    await store.create(pod)
    items, _ = await store.list("v1", "Pod", field_selector="spec.nodeName=n1,status.phase=Pending")
    assert len(items) == 1
    items, _ = await store.list("v1", "Pod", field_selector="spec.nodeName!=n1")
    assert items == []
    with pytest.raises(ApiError) as exc:
        await store.list("v1", "Pod", field_selector="spec.bogus=1")
    assert exc.value.code == 400 and "spec.bogus" in exc.value.message


async def test_reviews_are_not_stored_kinds(store):
    """Reviews are answered by the authentication/authorization seam (reviews.py), never by the store."""
    rv = store.resource_version
    with pytest.raises(ApiError) as exc:
        await store.create({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                            "spec": {"resourceAttributes": {"verb": "create", "resource": "pods"}}})
    assert exc.value.code == 405 and store.resource_version == rv


async def test_crd_schema_defaults_and_pruning_on_write(store):
    crd = {**CRD, "metadata": {"name": "knobs.example.com"}}
    crd["spec"] = {**CRD["spec"], "names": {"plural": "knobs", "kind": "Knob"}, "versions": [{
        "name": "v1", "served": True, "storage": True,
        "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "mode": {"type": "string", "default": "FailClose"}, "size": {"type": "integer"}}}}}}}]}
    await store.create(crd)
    knob = await store.create({"apiVersion": "example.com/v1", "kind": "Knob",
                               "metadata": {"name": "k", "namespace": "default"}, "spec": {"size": 1, "bogus": 2}})
    assert knob["spec"] == {"size": 1, "mode": "FailClose"}


async def test_watch_history_is_bounded_by_bytes_as_well_as_count():
    """Issue 17 §6: a few big objects written in a loop push the history floor up long before the count
    bound; a watch resuming from before them is refused with 410 (the client re-lists)."""
    store = Store(":memory:", history=10_000, history_bytes=200_000)
    try:
        first = await store.create(cm("big"))
        since = first["metadata"]["resourceVersion"]
        for n in range(5):
            await store.patch("v1", "ConfigMap", "big", "default", {"data": {"k": "x" * 60_000 + str(n)}}, "merge")
        changes, held = store.storage.bus.held
        assert changes < 6 and held <= 200_000
        with pytest.raises(ApiError) as exc:
            store.watch("v1", "ConfigMap", "default", resource_version=since)
        assert exc.value.code == 410
    finally:
        store.close()
