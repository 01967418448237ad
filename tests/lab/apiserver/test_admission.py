"""Validating admission webhooks registered with the Store: who is asked, how a denial reads, nothing applied."""

from __future__ import annotations

import json

import kubernetes
import pytest
from labserver import ApiServer

from llmd_lab.lab.apiserver.admission import AdmissionRequest, ValidatingWebhook, denied
from llmd_lab.lab.apiserver.errors import ApiError
from llmd_lab.lab.apiserver.store import Store

pytestmark = pytest.mark.anyio
HOOK = "team-label-validator.example.com"
CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com", "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [{"name": "v1", "served": True, "storage": True,
                      "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                      "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas",
                                                              "statusReplicasPath": ".status.replicas"}}}],
    },
}


def cm(name: str, **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default",
                                                                  "labels": labels}, "data": {"k": "v"}}


class Recorder:
    """A webhook body: denies objects without a ``team`` label, remembers every request it was sent."""

    def __init__(self) -> None:
        self.requests: list[AdmissionRequest] = []

    def __call__(self, request: AdmissionRequest) -> str | None:
        self.requests.append(request)
        labels = request.object["metadata"].get("labels") or {}
        return None if labels.get("team") else 'missing required label "team"'


def team_hook(store: Store, *, kinds=("ConfigMap",), group: str = "", **kw) -> Recorder:
    recorder = Recorder()
    store.register_validating_webhook(ValidatingWebhook(HOOK, group, frozenset(kinds), recorder, **kw))
    return recorder


DENIAL = f'admission webhook "{HOOK}" denied the request: missing required label "team"'


async def test_denied_create_reads_like_kube_apiserver_and_stores_nothing(store):
    hook = team_hook(store)
    rv = store.resource_version
    with pytest.raises(ApiError) as err:
        await store.create(cm("a"))
    status = err.value.to_status()
    assert (status["code"], status["reason"], status["message"]) == (403, "Forbidden", DENIAL)
    assert (await store.list("v1", "ConfigMap", "default"))[0] == []
    assert store.resource_version == rv  # no write, so no watch event either
    assert [(r.operation, r.kind, r.name, r.namespace, r.old_object) for r in hook.requests] == [
        ("CREATE", "ConfigMap", "a", "default", None)]
    created = await store.create(cm("a", team="kv"))
    assert created["metadata"]["labels"] == {"team": "kv"}
    # the webhook sees the object as it will be stored (uid and creationTimestamp already set)
    assert hook.requests[-1].object["metadata"]["uid"] == created["metadata"]["uid"]


async def test_dry_run_is_judged_too(store):
    team_hook(store)
    with pytest.raises(ApiError, match="denied the request"):
        await store.create(cm("a"), dry_run=True)
    ok = await store.create(cm("a", team="kv"), dry_run=True)
    assert ok["metadata"]["name"] == "a"
    assert (await store.list("v1", "ConfigMap", "default"))[0] == []


@pytest.mark.parametrize("patch_type,body", [
    ("merge", {"metadata": {"labels": {"team": None}}}),
    ("json", [{"op": "remove", "path": "/metadata/labels/team"}]),
    ("strategic", {"metadata": {"labels": {"team": None}}, "data": {"k": "changed"}}),
])
async def test_denied_patch_leaves_the_object_as_it_was(store, patch_type, body):
    before = await store.create(cm("a", team="kv"))
    hook = team_hook(store)
    with pytest.raises(ApiError) as err:
        await store.patch("v1", "ConfigMap", "a", "default", body, patch_type)
    assert err.value.code == 403 and err.value.message == DENIAL
    assert await store.get("v1", "ConfigMap", "a", "default") == before
    request = hook.requests[-1]
    assert request.operation == "UPDATE" and request.old_object["metadata"]["labels"] == {"team": "kv"}


async def test_denied_update_and_allowed_update(store):
    before = await store.create(cm("a", team="kv"))
    team_hook(store)
    edited = {**before, "metadata": {**before["metadata"], "labels": {}}}
    with pytest.raises(ApiError, match="denied the request"):
        await store.update(edited)
    with pytest.raises(ApiError, match="denied the request"):
        await store.update(edited, dry_run=True)
    assert await store.get("v1", "ConfigMap", "a", "default") == before
    kept = {**before, "data": {"k": "new"}}
    assert (await store.update(kept))["data"] == {"k": "new"}


async def test_server_side_apply_that_creates_is_a_create(store):
    hook = team_hook(store)
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "default"}}
    with pytest.raises(ApiError, match="denied the request"):
        await store.patch("v1", "ConfigMap", "a", "default", body, "apply", field_manager="kubectl")
    assert hook.requests[-1].operation == "CREATE"
    with pytest.raises(ApiError) as err:
        await store.get("v1", "ConfigMap", "a", "default")
    assert err.value.code == 404


async def test_rules_pick_group_kind_operation_and_subresource(store):
    await store.create(CRD)
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "default"},
              "spec": {"replicas": 1}}
    created = await store.create(widget)  # before any webhook
    creates = team_hook(store, kinds=("Widget",), group="example.com", operations=frozenset({"CREATE"}))
    # another group's ConfigMap-like kind and core ConfigMaps are not sent to it
    await store.create(cm("plain"))
    # an UPDATE is not sent to a CREATE-only webhook
    await store.update({**created, "spec": {"replicas": 2}})
    assert creates.requests == []
    with pytest.raises(ApiError, match="denied the request"):
        await store.create({**widget, "metadata": {"name": "w2", "namespace": "default"}})

    updates = Recorder()
    store.register_validating_webhook(ValidatingWebhook(
        "status-watcher.example.com", "example.com", frozenset({"*"}), updates,
        operations=frozenset({"UPDATE"}), subresources=frozenset({"status", "scale"})))
    current = await store.get("example.com/v1", "Widget", "w", "default")
    with pytest.raises(ApiError, match=r"status-watcher\.example\.com"):
        await store.update_status({**current, "status": {"replicas": 2}})
    with pytest.raises(ApiError, match=r"status-watcher\.example\.com"):
        await store.patch("example.com/v1", "Widget", "w", "default", {"spec": {"replicas": 3}}, "merge",
                          subresource="scale")
    await store.update({**current, "spec": {"replicas": 4}})  # the object itself: not its business
    assert [r.subresource for r in updates.requests] == ["status", "scale"]
    assert (await store.get("example.com/v1", "Widget", "w", "default"))["spec"] == {"replicas": 4}


async def test_unregister_duplicate_names_and_bad_rules(store):
    recorder = Recorder()
    unregister = store.register_validating_webhook(ValidatingWebhook(HOOK, "", frozenset({"ConfigMap"}), recorder))
    with pytest.raises(ValueError, match="already registered"):
        store.register_validating_webhook(ValidatingWebhook(HOOK, "", frozenset({"Secret"}), recorder))
    with pytest.raises(ValueError, match="operations"):
        ValidatingWebhook("x.example.com", "", frozenset({"Pod"}), recorder, operations=frozenset({"DELETE"}))
    with pytest.raises(ValueError, match="kinds"):
        ValidatingWebhook("x.example.com", "", frozenset(), recorder)
    unregister()
    assert (await store.create(cm("a")))["metadata"]["name"] == "a"


async def test_webhook_errors_pass_through_and_denials_never_go_below_400(store):
    def broken(request: AdmissionRequest) -> str | None:
        raise ApiError(500, "InternalError", 'failed calling webhook "broken.example.com": connection refused')

    store.register_validating_webhook(ValidatingWebhook("broken.example.com", "", frozenset({"Secret"}), broken))
    with pytest.raises(ApiError) as err:
        await store.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "default"}})
    assert err.value.code == 500
    assert denied("w.example.com", "", code=200).code == 400
    assert denied("w.example.com", "").message == 'admission webhook "w.example.com" denied the request without explanation'


def test_official_client_gets_the_denial_status(api_server: ApiServer, api_client, namespace: str):
    unregister = api_server.store.register_validating_webhook(
        ValidatingWebhook(HOOK, "", frozenset({"ConfigMap"}), Recorder()))
    core = kubernetes.client.CoreV1Api(api_client)
    try:
        with pytest.raises(kubernetes.client.ApiException) as err:
            core.create_namespaced_config_map(namespace, {"metadata": {"name": "a"}}, dry_run="All")
        assert err.value.status == 403
        status = json.loads(err.value.body)
        assert (status["kind"], status["code"], status["reason"], status["message"]) == (
            "Status", 403, "Forbidden", DENIAL)
        core.create_namespaced_config_map(namespace, {"metadata": {"name": "a", "labels": {"team": "kv"}}})
        assert core.read_namespaced_config_map("a", namespace).metadata.labels == {"team": "kv"}
    finally:
        unregister()
