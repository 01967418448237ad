"""Installing a cluster profile leaves the cluster the way its operators would: objects keep their status
(written through the status subresource) and built-in kinds deserialise in the official typed client."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import kubernetes
import pytest
from labserver import ApiServer, start_api_server

from llmd_lab.lab.apiserver.store import Store
from llmd_lab.lab.profiles import load_profile
from llmd_lab.lab.server import LabPaths, install_profile


@pytest.fixture(scope="module")
def rhoai(tmp_path_factory) -> Iterator[ApiServer]:
    store = Store(":memory:")
    asyncio.run(install_profile(store, load_profile("rhoai-3.0"), LabPaths(tmp_path_factory.mktemp("rhoai"))))
    server = start_api_server(store)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(rhoai: ApiServer) -> Iterator[kubernetes.client.ApiClient]:
    api = rhoai.client()
    yield api
    api.close()


def test_operator_csvs_report_succeeded(client) -> None:
    csvs = kubernetes.client.CustomObjectsApi(client).list_cluster_custom_object(
        "operators.coreos.com", "v1alpha1", "clusterserviceversions")["items"]
    assert len(csvs) == 7
    assert {c["metadata"]["name"]: c.get("status", {}).get("phase") for c in csvs} == {
        c["metadata"]["name"]: "Succeeded" for c in csvs}


def test_cluster_version_reports_desired_and_history(client) -> None:
    cv = kubernetes.client.CustomObjectsApi(client).get_cluster_custom_object(
        "config.openshift.io", "v1", "clusterversions", "version")
    assert cv["status"]["desired"]["version"] == "4.19.9"
    assert cv["status"]["history"][0] == {"state": "Completed", "version": "4.19.9"}


def test_gateway_class_and_data_science_cluster_conditions(client) -> None:
    api = kubernetes.client.CustomObjectsApi(client)
    gc = api.get_cluster_custom_object("gateway.networking.k8s.io", "v1", "gatewayclasses", "openshift-default")
    assert {c["type"]: c["status"] for c in gc["status"]["conditions"]}["Accepted"] == "True"
    dsc = api.list_cluster_custom_object("datasciencecluster.opendatahub.io", "v1", "datascienceclusters")["items"][0]
    assert {c["type"]: c["status"] for c in dsc["status"]["conditions"]}["KserveReady"] == "True"


def test_nodes_deserialise_in_the_typed_client(client) -> None:
    nodes = kubernetes.client.CoreV1Api(client).list_node().items
    assert len(nodes) == 10
    for node in nodes:
        info = node.status.node_info
        assert info.os_image.startswith("Red Hat Enterprise Linux CoreOS")
        assert info.container_runtime_version.startswith("cri-o://")
        assert info.kubelet_version == "v1.32.7" and info.architecture == "amd64"
        assert info.machine_id and info.system_uuid and info.boot_id and info.kernel_version
    assert len({n.status.node_info.machine_id for n in nodes}) == len(nodes)
