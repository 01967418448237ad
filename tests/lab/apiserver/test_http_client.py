"""The API server driven by the official ``kubernetes`` client: typed APIs, dynamic client, watch."""

from __future__ import annotations

import json
import threading

import kubernetes
import pytest
from kubernetes.client import AppsV1Api, CoreV1Api, CustomObjectsApi
from kubernetes.client.rest import ApiException
from kubernetes.dynamic import DynamicClient
from labserver import start_api_server

from llmd_lab.lab.apiserver.store import Store

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "gadgets.example.com"},
    "spec": {
        "group": "example.com", "scope": "Namespaced",
        "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget", "shortNames": ["gd"],
                  "categories": ["all"]},
        "versions": [{
            "name": "v1", "served": True, "storage": True,
            "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                "spec": {"type": "object", "properties": {"replicas": {"type": "integer"}, "url": {"type": "string"}}},
                "status": {"type": "object", "properties": {
                    "replicas": {"type": "integer"}, "url": {"type": "string"},
                    "conditions": {"type": "array", "items": {"type": "object",
                                                              "x-kubernetes-preserve-unknown-fields": True}}}},
            }}},
            "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas",
                                                     "statusReplicasPath": ".status.replicas"}},
            "additionalPrinterColumns": [
                {"name": "URL", "type": "string", "jsonPath": ".status.url"},
                {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
                {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
            ],
        }],
    },
}


def pod(name: str, **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
            "spec": {"containers": [{"name": "main", "image": "busybox", "ports": [{"containerPort": 8000}]}]}}


def deployment(name: str, replicas: int = 1) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "img"}]}}}}


def test_typed_crud_and_selectors(api_client, namespace):
    core = CoreV1Api(api_client)
    created = core.create_namespaced_pod(namespace, pod("web-1", app="web", tier="front"))
    assert created.metadata.uid and created.status.phase == "Pending"
    core.create_namespaced_pod(namespace, pod("db-1", app="db"))
    listed = core.list_namespaced_pod(namespace, label_selector="app in (web),tier")
    assert [p.metadata.name for p in listed.items] == ["web-1"]
    listed = core.list_namespaced_pod(namespace, label_selector="app!=web")
    assert [p.metadata.name for p in listed.items] == ["db-1"]
    listed = core.list_pod_for_all_namespaces(field_selector=f"metadata.namespace={namespace},status.phase=Pending")
    assert sorted(p.metadata.name for p in listed.items) == ["db-1", "web-1"]
    got = core.read_namespaced_pod("web-1", namespace)
    got.metadata.labels["tier"] = "back"
    replaced = core.replace_namespaced_pod("web-1", namespace, got)
    assert replaced.metadata.labels["tier"] == "back"
    assert int(replaced.metadata.resource_version) > int(got.metadata.resource_version)
    core.delete_namespaced_pod("web-1", namespace)
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_pod("web-1", namespace)
    assert exc.value.status == 404 and json.loads(exc.value.body)["message"] == 'pods "web-1" not found'


def test_limit_and_continue(api_client, namespace):
    core = CoreV1Api(api_client)
    for n in range(5):
        core.create_namespaced_config_map(namespace, {"metadata": {"name": f"cm-{n}"}})
    first = core.list_namespaced_config_map(namespace, limit=2)
    assert [c.metadata.name for c in first.items] == ["cm-0", "cm-1"] and first.metadata._continue
    rest = core.list_namespaced_config_map(namespace, limit=10, _continue=first.metadata._continue)
    assert [c.metadata.name for c in rest.items] == ["cm-2", "cm-3", "cm-4"] and not rest.metadata._continue


def test_generate_name_and_generation(api_client, namespace):
    apps = AppsV1Api(api_client)
    body = deployment("x")
    body["metadata"] = {"generateName": "web-"}
    d = apps.create_namespaced_deployment(namespace, body)
    name = d.metadata.name
    assert name.startswith("web-") and len(name) == len("web-") + 5 and d.metadata.generation == 1
    d = apps.patch_namespaced_deployment(name, namespace, {"metadata": {"labels": {"a": "b"}}})
    assert d.metadata.generation == 1
    d = apps.patch_namespaced_deployment(name, namespace, {"spec": {"replicas": 3}})
    assert d.metadata.generation == 2


def test_status_and_scale_subresources(api_client, namespace):
    apps = AppsV1Api(api_client)
    apps.create_namespaced_deployment(namespace, deployment("d", 2))
    d = apps.patch_namespaced_deployment_status("d", namespace, {"status": {"replicas": 2, "readyReplicas": 1},
                                                                 "spec": {"replicas": 9}})
    assert d.status.ready_replicas == 1 and d.spec.replicas == 2
    d = apps.patch_namespaced_deployment("d", namespace, {"status": {"readyReplicas": 5}})
    assert d.status.ready_replicas == 1
    scale = apps.read_namespaced_deployment_scale("d", namespace)
    assert scale.spec.replicas == 2 and scale.status.selector == "app=d"
    # what `kubectl scale` sends: a merge patch on the scale subresource
    scale = apps.patch_namespaced_deployment_scale("d", namespace, {"spec": {"replicas": 4}})
    assert scale.spec.replicas == 4
    scale.spec.replicas = 6
    apps.replace_namespaced_deployment_scale("d", namespace, scale)
    assert apps.read_namespaced_deployment("d", namespace).spec.replicas == 6


def test_patch_types_over_http(api_server, namespace):
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    assert api_server.request("POST", path, json={"apiVersion": "v1", "kind": "ConfigMap",
                                                  "metadata": {"name": "p"}, "data": {"a": "1"}}).status_code == 201
    # kubectl label
    r = api_server.request("PATCH", f"{path}/p", content=b'{"metadata":{"labels":{"env":"lab"}}}',
                           headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200 and r.json()["metadata"]["labels"] == {"env": "lab"}
    r = api_server.request("PATCH", f"{path}/p", content=b'[{"op":"add","path":"/data/b","value":"2"}]',
                           headers={"Content-Type": "application/json-patch+json"})
    assert r.json()["data"] == {"a": "1", "b": "2"}
    r = api_server.request("PATCH", f"{path}/p", content=b'{"data":{"a":null}}',
                           headers={"Content-Type": "application/strategic-merge-patch+json"})
    assert r.json()["data"] == {"b": "2"}
    applied = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: p2\ndata:\n  x: y\n"
    r = api_server.request("PATCH", f"{path}/p2?fieldManager=tester", content=applied.encode(),
                           headers={"Content-Type": "application/apply-patch+yaml"})
    assert r.status_code == 201 and r.json()["metadata"]["managedFields"][0]["manager"] == "tester"


def test_container_merge_keys(api_client, namespace):
    apps = AppsV1Api(api_client)
    apps.create_namespaced_deployment(namespace, deployment("m"))
    patch = {"spec": {"template": {"spec": {"containers": [
        {"name": "c", "env": [{"name": "A", "value": "1"}], "ports": [{"containerPort": 8000}]},
        {"name": "sidecar", "image": "proxy"}]}}}}
    d = apps.patch_namespaced_deployment("m", namespace, patch)  # the client sends strategic merge patches
    containers = d.spec.template.spec.containers
    assert [c.name for c in containers] == ["c", "sidecar"] and containers[0].image == "img"
    assert containers[0].env[0].name == "A"


def test_stale_update_conflicts(api_client, namespace):
    core = CoreV1Api(api_client)
    cm = core.create_namespaced_config_map(namespace, {"metadata": {"name": "c"}, "data": {"v": "1"}})
    cm.data = {"v": "2"}
    core.replace_namespaced_config_map("c", namespace, cm)
    cm.data = {"v": "3"}
    with pytest.raises(ApiException) as exc:
        core.replace_namespaced_config_map("c", namespace, cm)
    assert exc.value.status == 409 and "the object has been modified" in json.loads(exc.value.body)["message"]
    assert core.read_namespaced_config_map("c", namespace).data == {"v": "2"}


def test_crd_registration_custom_objects_dynamic_and_table(api_server, api_client, namespace):
    ext = kubernetes.client.ApiextensionsV1Api(api_client)
    try:
        ext.create_custom_resource_definition(CRD)
    except ApiException as exc:
        assert exc.status == 409
    crd = ext.read_custom_resource_definition("gadgets.example.com")
    assert {c.type: c.status for c in crd.status.conditions} == {"NamesAccepted": "True", "Established": "True"}
    custom = CustomObjectsApi(api_client)
    custom.create_namespaced_custom_object("example.com", "v1", namespace, "gadgets", {
        "apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g1"}, "spec": {"replicas": 1}})
    custom.patch_namespaced_custom_object_status("example.com", "v1", namespace, "gadgets", "g1", {
        "status": {"url": "http://g1", "conditions": [{"type": "Ready", "status": "True"}]}})
    scale = custom.patch_namespaced_custom_object_scale("example.com", "v1", namespace, "gadgets", "g1",
                                                        {"spec": {"replicas": 3}})
    assert scale["spec"]["replicas"] == 3
    dyn = DynamicClient(api_client)
    gadgets = dyn.resources.get(api_version="example.com/v1", kind="Gadget")
    got = gadgets.get(name="g1", namespace=namespace)
    assert got.spec.replicas == 3 and got.status.url == "http://g1"
    table = api_server.request("GET", f"/apis/example.com/v1/namespaces/{namespace}/gadgets",
                               headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}).json()
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "URL", "Ready", "Age"]
    assert table["rows"][0]["cells"][:3] == ["g1", "http://g1", "True"]


def test_dynamic_client_builtins(api_client, namespace):
    dyn = DynamicClient(api_client)
    services = dyn.resources.get(api_version="v1", kind="Service")
    svc = services.create(namespace=namespace, body={"apiVersion": "v1", "kind": "Service",
                                                     "metadata": {"name": "s"},
                                                     "spec": {"ports": [{"port": 80}], "selector": {"a": "b"}}})
    assert svc.spec.type == "ClusterIP"
    assert [s.metadata.name for s in services.get(namespace=namespace).items] == ["s"]


def test_watch_stream_resume_and_gone(api_server, api_client, namespace):
    core = CoreV1Api(api_client)
    first = core.create_namespaced_config_map(namespace, {"metadata": {"name": "w1"}})
    start_rv = first.metadata.resource_version
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "w2"}})
    core.delete_namespaced_config_map("w1", namespace)
    w = kubernetes.watch.Watch()
    seen = []
    for event in w.stream(core.list_namespaced_config_map, namespace, resource_version=start_rv, timeout_seconds=5):
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) == 2:
            w.stop()
    assert seen == [("ADDED", "w2"), ("DELETED", "w1")]
    # a live event reaches a watcher started from "now"
    listed = core.list_namespaced_config_map(namespace)
    done = threading.Event()
    got: list = []

    def watch_live() -> None:
        w2 = kubernetes.watch.Watch()
        for event in w2.stream(core.list_namespaced_config_map, namespace,
                               resource_version=listed.metadata.resource_version, timeout_seconds=5):
            got.append(event["type"])
            w2.stop()
        done.set()

    t = threading.Thread(target=watch_live)
    t.start()
    deadline = threading.Event()
    while not got and not done.is_set():
        core.patch_namespaced_config_map("w2", namespace, {"data": {"n": str(len(got))}})
        deadline.wait(0.05)
    t.join(10)
    assert got and got[0] == "MODIFIED"


def test_watch_too_old_is_410():
    server = start_api_server(Store(":memory:", history=3))
    try:
        with server.client() as client:
            core = CoreV1Api(client)
            first = core.create_namespaced_config_map("default", {"metadata": {"name": "old"}})
            for n in range(5):
                core.create_namespaced_config_map("default", {"metadata": {"name": f"n{n}"}})
            r = server.request("GET", "/api/v1/configmaps?watch=1&timeoutSeconds=2&resourceVersion="
                               + first.metadata.resource_version)
            line = r.json()
            assert line["type"] == "ERROR" and line["object"]["code"] == 410
            assert "too old resource version" in line["object"]["message"]
            with pytest.raises(ApiException) as exc:
                for _ in kubernetes.watch.Watch().stream(core.list_namespaced_config_map, "default",
                                                         resource_version=first.metadata.resource_version,
                                                         timeout_seconds=2):
                    pass
            assert exc.value.status == 410
    finally:
        server.stop()


def test_bookmarks(api_server, namespace):
    rv = api_server.store.resource_version
    with api_server.http.stream(
        "GET", f"/api/v1/namespaces/{namespace}/pods?watch=1&allowWatchBookmarks=true&resourceVersion={rv}"
        "&timeoutSeconds=3", headers={"Authorization": f"Bearer {api_server.token}"},
    ) as r:
        for line in r.iter_lines():
            event = json.loads(line)
            assert event["type"] == "BOOKMARK" and int(event["object"]["metadata"]["resourceVersion"]) >= int(rv)
            break


def test_gc_and_namespace_deletion_over_http(api_client, namespace):
    core = CoreV1Api(api_client)
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}})
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "child", "ownerReferences": [ref]}})
    core.delete_namespaced_config_map("owner", namespace)
    assert core.list_namespaced_config_map(namespace).items == []
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "left"}})
    ns = core.delete_namespace(namespace)
    with pytest.raises(ApiException) as exc:
        core.read_namespace(namespace)
    assert exc.value.status == 404, ns


def test_reviews(api_client):
    authz = kubernetes.client.AuthorizationV1Api(api_client)
    review = authz.create_self_subject_access_review({"spec": {"resourceAttributes": {"verb": "create",
                                                                                       "resource": "pods"}}})
    assert review.status.allowed is True and review.status.reason
    rules = authz.create_self_subject_rules_review({"spec": {"namespace": "default"}})
    assert rules.status.resource_rules[0].verbs == ["*"]
