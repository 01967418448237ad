"""assets/gitops/: generated from llmd_lab.manifests, buildable by kustomize, valid, and accepted by a lab.

The committed tree must be what ``assets/gitops/render.py`` writes (so nobody hand-edits an
LLMInferenceService that the library would build differently); every kustomization must build, with the
kustomize in kubectl 1.32, to exactly the objects the generator describes (so the JSON 6902 patches really
compose into the library's output); every object must pass the lab's schemas (the CRD YAML a cluster serves,
Kubernetes 1.32's built-in schemas) with no unknown field; the EPP configs and vLLM flags must load in the
simulated EPP and vLLM; and ``kubectl apply -k`` must be accepted by a running lab (server-side dry run).
"""

from __future__ import annotations

import importlib.util
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from llmd_lab import manifests

REPO = Path(__file__).resolve().parents[2]
GITOPS = REPO / "assets" / "gitops"
HAS_KUBECTL = shutil.which("kubectl") is not None
needs_kubectl = [
    pytest.mark.kubectl,
    pytest.mark.skipif(not HAS_KUBECTL, reason="kubectl (1.32, with kustomize built in) is not installed"),
]


def _load_render():
    spec = importlib.util.spec_from_file_location("gitops_render", GITOPS / "render.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


render = _load_render()
KUSTOMIZATIONS = render.kustomizations()
ALL_OBJECTS = {(obj["kind"], obj["metadata"]["name"]): obj for objs in KUSTOMIZATIONS.values() for obj in objs}


def _key(obj: dict) -> tuple[str, str, str]:
    return obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


def _service(variant) -> dict:
    [svc] = [o for o in KUSTOMIZATIONS[f"overlays/{variant.overlay}"] if o["kind"] == manifests.KIND]
    return svc


def _container_env(template: dict) -> dict[str, dict]:
    [container] = template["containers"]
    return {e["name"]: e for e in container.get("env", [])}


# --------------------------------------------------------------------------------------------- generated
def test_committed_tree_matches_the_generator() -> None:
    stale = render.stale_files()
    assert not stale, f"assets/gitops is out of date ({', '.join(stale)}): run `{render.COMMAND}` to regenerate"


def test_check_mode_catches_a_hand_edit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    render.render(tmp_path)
    assert render.main(["--check", "--out", str(tmp_path)]) == 0
    patch = tmp_path / "overlays" / "tensor" / "patch-llminferenceservice.yaml"
    patch.write_text(patch.read_text().replace("value: 2", "value: 4"))
    (tmp_path / "overlays" / "tensor" / "extra.yaml").write_text("{}\n")
    assert render.main(["--check", "--out", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "stale: overlays/tensor/patch-llminferenceservice.yaml" in out
    assert "stale: overlays/tensor/extra.yaml" in out
    assert f"run `{render.COMMAND}`" in out


def test_services_are_the_library_build_of_each_variant() -> None:
    """No hand-made service: each is manifests.llm_inference_service(**variant.service) (+ its documented post)."""
    for variant in render.VARIANTS:
        built = manifests.llm_inference_service(**variant.service)
        expected = variant.post(built) if variant.post else built
        assert _service(variant) == expected, variant.overlay
        assert manifests.validate(expected) == [], variant.overlay


def test_variants_have_the_layout_their_overlay_name_promises() -> None:
    by_name = {v.overlay: _service(v)["spec"] for v in render.VARIANTS}
    assert by_name["replicas"]["replicas"] == 2 and by_name["replicas"]["parallelism"] == {"tensor": 1}
    assert by_name["tensor"]["parallelism"]["tensor"] == 2
    assert by_name["tensor"]["template"]["nodeSelector"]["node.kubernetes.io/instance-type"] == "g6.12xlarge"
    assert by_name["pd"]["prefill"]["replicas"] == 1
    nixl = _container_env(by_name["pd"]["prefill"]["template"])["VLLM_ADDITIONAL_ARGS"]["value"]
    assert "NixlConnector" in nixl


def test_every_overlay_fits_the_llmd_queue_reservation() -> None:
    """Kueue admits a service's pods only within rhoai-llmd-queue's quota: each overlay must fit it alone."""
    from llmd_lab.lab.scheduler.quantity import to_units

    for variant in render.VARIANTS:
        spec = _service(variant)["spec"]
        workloads = [spec, *([spec["prefill"]] if spec.get("prefill") else [])]
        for resource, quota in render.RESERVED.items():
            used = sum(
                to_units(resource, c["resources"]["requests"][resource]) * w["replicas"]
                for w in workloads for c in w["template"]["containers"]
            )  # fmt: skip
            assert used <= to_units(resource, quota), f"{variant.overlay}: {resource} {used} > {quota}"


def _epp_args(svc: dict) -> list[str]:
    containers = svc["spec"]["router"]["scheduler"]["template"]["containers"]
    [main] = [c for c in containers if c["name"] == "main"]
    return main["args"]


def _config_text(svc: dict) -> str | None:
    args = _epp_args(svc)
    return args[args.index("--config-text") + 1] if "--config-text" in args else None


def test_scheduler_overlays_carry_the_named_epp_configs() -> None:
    texts = {v.overlay: _config_text(_service(v)) for v in render.VARIANTS}
    assert texts["replicas"] is None  # KServe injects its default (prefix 2 / load 1)
    course = yaml.safe_load(texts["course-scheduler"])
    weights = {p["pluginRef"]: p.get("weight") for p in course["schedulingProfiles"][0]["plugins"]}
    assert {k: weights[k] for k in manifests.COURSE_WEIGHTS} == manifests.COURSE_WEIGHTS
    precise = yaml.safe_load(texts["precise-prefix"])
    assert "precise-prefix-cache-scorer" in {p["type"] for p in precise["plugins"]}
    for variant in render.VARIANTS:  # the kv-cache metric workaround rides along everywhere
        args = _epp_args(_service(variant))
        assert args[args.index(manifests.KV_METRIC_FLAG) + 1] == manifests.KV_METRIC_NAME


def test_epp_configs_and_flags_load_in_the_simulated_epp() -> None:
    from llmd_lab.sim.epp.config import load_config
    from llmd_lab.sim.epp.flags import parse_flags

    for variant in render.VARIANTS:
        svc = _service(variant)
        name = svc["metadata"]["name"]
        args = [a.replace("{{ .ObjectMeta.Namespace }}", render.NAMESPACE) for a in _epp_args(svc)]
        parse_flags(args)
        text = _config_text(svc)
        if text is not None:
            loaded = load_config(text)
            assert loaded.plugins, f"{name}: the EPP config loaded no plugins"


def test_vllm_flags_parse_as_the_simulated_vllm_parses_them() -> None:
    """The preset runs ``vllm serve /mnt/models … ${VLLM_ADDITIONAL_ARGS}``; each variant's flags must parse."""
    from llmd_lab.sim.vllm.args import parse_args

    for variant in render.VARIANTS:
        spec = _service(variant)["spec"]
        for template in (spec["template"], (spec.get("prefill") or {}).get("template")):
            if template is None:
                continue
            extra = _container_env(template)["VLLM_ADDITIONAL_ARGS"]["value"].replace("$(POD_IP)", "127.1.0.7")
            parsed = parse_args(["serve", "/mnt/models", "--port", "8000", *shlex.split(extra)])
            if variant.overlay == "precise-prefix":
                assert parsed.block_size == 64
                events = parsed.kv_events_config
                assert events is not None and events.topic == f"kv@127.1.0.7@{variant.name}"


def test_precise_prefix_hashes_agree_between_vllm_and_the_epp() -> None:
    """Block size and hash seed must match on both sides, or every lookup misses."""
    svc = _service(next(v for v in render.VARIANTS if v.overlay == "precise-prefix"))
    env = _container_env(svc["spec"]["template"])
    names = list(env)
    assert names.index("POD_IP") < names.index("VLLM_ADDITIONAL_ARGS"), "$(POD_IP) expands only if defined before"
    assert env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    config = yaml.safe_load(_config_text(svc))
    [plugin] = [p for p in config["plugins"] if p["type"] == "precise-prefix-cache-scorer"]
    tokens = plugin["parameters"]["indexerConfig"]["tokenProcessorConfig"]
    assert tokens["hashSeed"] == env["PYTHONHASHSEED"]["value"]
    assert f"--block-size {tokens['blockSize']}" in env["VLLM_ADDITIONAL_ARGS"]["value"]
    # the EPP downloads the tokenizer into a writable volume mounted where the scorer looks
    epp = svc["spec"]["router"]["scheduler"]["template"]
    cache_dir = plugin["parameters"]["indexerConfig"]["tokenizersPoolConfig"]["tokenizersCacheDir"]
    [mount] = epp["containers"][0]["volumeMounts"]
    assert mount["mountPath"] == cache_dir and mount["name"] in {v["name"] for v in epp["volumes"]}


def test_routes_are_passthrough_to_the_workload_service_kserve_creates() -> None:
    from llmd_lab.kserve.names import child_name

    for variant in render.VARIANTS:
        [route] = [o for o in KUSTOMIZATIONS[f"overlays/{variant.overlay}"] if o["kind"] == "Route"]
        assert route["spec"]["tls"]["termination"] == "passthrough"
        assert route["spec"]["to"]["name"] == child_name(variant.name, "-kserve-workload-svc")


def test_auth_annotation_variants_and_token_rbac() -> None:
    auth = {v.overlay: _service(v)["metadata"]["annotations"][manifests.ENABLE_AUTH_ANNOTATION] for v in render.VARIANTS}
    assert auth.pop("token-auth") == "true"
    assert set(auth.values()) == {"false"}  # the RHOAI 3.0 workaround everywhere else
    objects = {o["kind"]: o for o in KUSTOMIZATIONS["overlays/token-auth"]}
    assert {"ServiceAccount", "Role", "RoleBinding"} <= set(objects)
    assert "ServiceAccount" not in {o["kind"] for o in KUSTOMIZATIONS["overlays/replicas"]}
    [rule] = objects["Role"]["rules"]
    assert rule == {"apiGroups": ["serving.kserve.io"], "resources": ["llminferenceservices"],
                    "resourceNames": [objects[manifests.KIND]["metadata"]["name"]], "verbs": ["get"]}
    binding = objects["RoleBinding"]
    assert binding["roleRef"]["name"] == objects["Role"]["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": objects["ServiceAccount"]["metadata"]["name"],
                                    "namespace": objects[manifests.KIND]["metadata"]["namespace"]}]


def test_json6902_round_trips_through_jsonpatch() -> None:
    """The patch writer's ops, applied by a standard RFC 6902 implementation, give the variant back."""
    import jsonpatch

    base = render.bundle(render.VARIANTS[0])
    for variant in render.VARIANTS[1:]:
        for role, obj in render.bundle(variant).items():
            if role in base:
                assert jsonpatch.apply_patch(base[role], render.json6902(base[role], obj)) == obj
    assert render.json6902({"a/b": {"c": 1}}, {"a/b": {"c": 2}}) == [{"op": "replace", "path": "/a~1b/c", "value": 2}]


def test_readme_describes_every_kustomization() -> None:
    readme = (GITOPS / "README.md").read_text()
    for directory in KUSTOMIZATIONS:
        assert f"`{directory}/`" in readme or f"`{directory.split('/')[-1]}`" in readme, directory
    assert "kind: Application" in readme  # the Argo CD example


# --------------------------------------------------------------------------------------------- schemas
@pytest.fixture(scope="module")
def registry():
    from llmd_lab.lab import crds
    from llmd_lab.lab.apiserver.registry import ResourceRegistry

    reg = ResourceRegistry()
    for crd in crds.load():
        reg.register_crd(crd)
    return reg


@pytest.mark.parametrize("key", sorted(ALL_OBJECTS), ids=lambda k: f"{k[0]}/{k[1]}")
def test_objects_validate_against_the_lab_schemas(registry, key: tuple[str, str]) -> None:
    from llmd_lab.lab.apiserver.validation import unknown_fields, validate_object

    obj = ALL_OBJECTS[key]
    assert registry.find_kind(obj["apiVersion"], obj["kind"]) is not None, f"the lab serves no {obj['kind']}"
    assert validate_object(obj, registry) == []
    assert unknown_fields(obj, registry) == []  # kubectl apply is strict: an unknown field is an error


# --------------------------------------------------------------------------------------------- kustomize
def _kubectl(*args: str, env: dict[str, str] | None = None, stdin: str | None = None):
    return subprocess.run(["kubectl", *args], capture_output=True, text=True, timeout=120, check=False, env=env,
                          input=stdin)


@pytest.mark.parametrize("directory", sorted(KUSTOMIZATIONS))
@pytest.mark.kubectl
@pytest.mark.skipif(not HAS_KUBECTL, reason="kubectl (1.32, with kustomize built in) is not installed")
def test_kustomize_builds_exactly_the_generated_objects(directory: str) -> None:
    built = _kubectl("kustomize", str(GITOPS / directory))
    assert built.returncode == 0, built.stderr
    objects = sorted((d for d in yaml.safe_load_all(built.stdout) if d), key=_key)
    expected = sorted(json.loads(json.dumps(KUSTOMIZATIONS[directory])), key=_key)
    assert [_key(o) for o in objects] == [_key(o) for o in expected]
    for got, want in zip(objects, expected, strict=True):
        assert got == want, f"{directory}: {_key(got)} differs from the generator's object"


@pytest.mark.kubectl
@pytest.mark.skipif(not HAS_KUBECTL, reason="kubectl (1.32, with kustomize built in) is not installed")
def test_a_running_lab_accepts_every_overlay(lab) -> None:
    """What a platform team runs: namespace/ for real, then every kustomization as a server-side dry run."""
    applied = _kubectl("apply", "-k", str(GITOPS / "namespace"), env=lab.env)
    assert applied.returncode == 0, applied.stderr
    for directory in sorted(KUSTOMIZATIONS):
        result = _kubectl("apply", "-k", str(GITOPS / directory), "--dry-run=server", env=lab.env)
        assert result.returncode == 0, f"kubectl apply -k {directory} --dry-run=server:\n{result.stderr}"
        names = {o["metadata"]["name"] for o in KUSTOMIZATIONS[directory]}
        assert all(name in result.stdout for name in names), result.stdout
    # The dry run is not a rubber stamp: the same lab rejects a broken service.
    broken = json.loads(json.dumps(_service(render.VARIANTS[0])))
    broken["spec"]["replicas"] = "two"
    rejected = _kubectl("apply", "--dry-run=server", "-f", "-", env=lab.env, stdin=json.dumps(broken))
    assert rejected.returncode != 0 and "spec.replicas" in rejected.stderr


@pytest.mark.slow
@pytest.mark.kubectl
@pytest.mark.skipif(not HAS_KUBECTL, reason="kubectl (1.32, with kustomize built in) is not installed")
def test_replicas_overlay_becomes_ready_in_the_lab_and_its_route_finds_the_service(lab) -> None:
    """Applied for real, the base service is admitted through the llmd LocalQueue and becomes Ready, and the
    Route's backend is a Service the controller created, with the port the Route names."""
    overlay = str(GITOPS / "overlays" / "replicas")
    svc = _service(render.VARIANTS[0])
    name, namespace = svc["metadata"]["name"], svc["metadata"]["namespace"]
    [route] = [o for o in KUSTOMIZATIONS["overlays/replicas"] if o["kind"] == "Route"]
    assert _kubectl("apply", "-k", str(GITOPS / "namespace"), env=lab.env).returncode == 0
    applied = _kubectl("apply", "-k", overlay, env=lab.env)
    assert applied.returncode == 0, applied.stderr
    try:
        ready = _kubectl("wait", "--for=condition=Ready", f"llminferenceservice/{name}", "-n", namespace,
                         "--timeout=150s", env=lab.env)
        described = _kubectl("describe", f"llminferenceservice/{name}", "-n", namespace, env=lab.env).stdout
        assert ready.returncode == 0, f"{ready.stderr}\n{described}"
        backend = _kubectl("get", "service", route["spec"]["to"]["name"], "-n", namespace, "-o", "json", env=lab.env)
        assert backend.returncode == 0, backend.stderr
        ports = {p.get("name") for p in json.loads(backend.stdout)["spec"]["ports"]}
        assert route["spec"]["port"]["targetPort"] in ports
    finally:
        deleted = _kubectl("delete", "-k", overlay, "--wait=true", "--timeout=60s", env=lab.env)
        assert deleted.returncode == 0, deleted.stderr
