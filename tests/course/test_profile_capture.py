"""``llmd-lab profile capture`` against a lab, and ``llmd-lab up --profile`` of what it wrote: the twin matches."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from labhelpers import Lab, lab_connection, running_lab

from llmd_lab import k8s
from llmd_lab.instructor import capture

pytestmark = [pytest.mark.slow]


def _cli(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llmd_lab.cli", *args], env=lab.env, capture_output=True,
                          text=True, timeout=180, check=False)


def _shape(conn) -> dict:
    """What a rehearsal depends on: GPU nodes by type, CRDs, operators, presets, queues, the gateway."""
    nodes = sorted(((n["metadata"]["labels"] or {}).get("node.kubernetes.io/instance-type"),
                    (n["status"].get("capacity") or {}).get("nvidia.com/gpu")) for n in k8s.list_objects(conn, "v1", "Node"))
    crds = {c["metadata"]["name"]: c["spec"]["versions"]
            for c in k8s.list_objects(conn, "apiextensions.k8s.io/v1", "CustomResourceDefinition")}
    names = {kind: sorted(o["metadata"]["name"] for o in k8s.list_objects(conn, api, kind))
             for api, kind in capture.OBJECTS}
    return {"nodes": nodes, "crds": crds, "objects": names,
            "operators": sorted(o["name"] for o in capture._operators(conn)), "gateway": capture._gateway(conn)}


def test_capture_then_up_gives_a_twin(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("captured") / "twin"
    with running_lab(tmp_path_factory.mktemp("source-lab")) as source:
        ran = _cli(source, "profile", "capture", "--name", "twin", "--out", str(out))
        assert ran.returncode == 0, ran.stderr
        assert f"llmd-lab up --profile {out / 'profile.yaml'}" in ran.stdout
        with lab_connection(source, "default") as conn:
            original = _shape(conn)
    profile = yaml.safe_load((out / "profile.yaml").read_text())
    assert profile["nodeTypes"]["g6.12xlarge"]["gpu"] == {"product": "NVIDIA-L4", "count": 4, "memoryMiB": 23034,
                                                         "family": "ada-lovelace"}
    assert all((out / "crds" / f"{name}.yaml").is_file() for name in profile["crds"])
    objects = yaml.safe_load((out / "objects.yaml").read_text())
    assert {o["kind"] for o in objects} == {"LLMInferenceServiceConfig", "ResourceFlavor", "ClusterQueue", "LocalQueue"}
    crds = [yaml.safe_load(p.read_text()) for p in (out / "crds").glob("*.yaml")]
    assert all(set(o["metadata"]) <= {"name", "namespace", "labels"} for o in objects + crds)  # no annotations
    # the twin serves the captured schemas, not the lab's own: mark one and look for the mark
    crd_file = out / "crds" / "llminferenceservices.serving.kserve.io.yaml"
    crd = yaml.safe_load(crd_file.read_text())
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["description"] = "as captured from the class cluster"
    crd_file.write_text(yaml.safe_dump(crd))
    original["crds"][crd["metadata"]["name"]] = crd["spec"]["versions"]
    with running_lab(tmp_path_factory.mktemp("twin-lab"), "--profile", str(out / "profile.yaml")) as twin:
        with lab_connection(twin, "default") as conn:
            assert _shape(conn) == original


def test_capture_refuses_anything_that_looks_secret():
    node = {"metadata": {"name": "n", "labels": {"node.kubernetes.io/instance-type": "x"}},
            "status": {"capacity": {"cpu": "4", "memory": "1Gi"}}}

    class Conn:
        server = "https://example"
        api = None

    import llmd_lab.instructor.capture as cap

    def fake_list(conn, api, kind, namespace=None, label_selector=None):
        if kind == "Node":
            return [node]
        if kind == "LLMInferenceServiceConfig":
            return [{"apiVersion": api, "kind": kind, "metadata": {"name": "p", "namespace": "k"},
                     "spec": {"template": {"containers": [{"env": [{"name": "HF_TOKEN",
                                                                     "value": "Bearer abcdefghijklmnopqrstuvwx"}]}]}}}]
        return []

    mp = pytest.MonkeyPatch()
    mp.setattr(cap.k8s, "list_objects", fake_list)
    mp.setattr(cap.k8s, "has_kind", lambda conn, api, kind: kind == "LLMInferenceServiceConfig")
    mp.setattr(cap, "_openshift", lambda conn, nodes: {"version": "4.19.9"})
    try:
        with pytest.raises(cap.CaptureError, match=r"bearer token in objects\.yaml"):
            cap.capture(Conn(), "x")
    finally:
        mp.undo()


def test_a_profile_with_a_crd_the_lab_does_not_have_is_refused(tmp_path: Path):
    from llmd_lab.lab.profiles import ProfileError, load_profile

    src = Path(capture.__file__).parents[1] / "lab" / "profiles" / "rhoai-3.0.yaml"
    data = yaml.safe_load(src.read_text())
    data["crds"].append("widgets.example.com")
    data.pop("include")
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ProfileError, match=r"crds \['widgets.example.com'\] are neither"):
        load_profile(path)
