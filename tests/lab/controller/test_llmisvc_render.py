"""KServe rendering: presets merge, child names/labels/ownerReferences, EPP config, P/D and LWS shapes."""

from __future__ import annotations

import shlex

import pytest
import yaml

from llmd_lab.kserve.names import child_name
from llmd_lab.lab.controller.llmisvc.children import ClusterFacts, desired_children
from llmd_lab.lab.controller.llmisvc.presets import PresetError, combine, strategic_merge, well_known_presets


def render(llmisvc: dict, find_config, facts: ClusterFacts | None = None) -> dict[tuple[str, str], dict]:
    spec = combine(llmisvc, find_config)
    return {(o["kind"], o["metadata"]["name"]): o for o in desired_children(llmisvc, spec, facts)}


def test_child_name_truncates_like_knative() -> None:
    assert child_name("mistral", "-kserve") == "mistral-kserve"
    long = "a" * 60
    name = child_name(long, "-kserve-workload-svc")
    assert len(name) == 63 and name.endswith("-kserve-workload-svc")
    assert name.startswith("a" * (63 - len("-kserve-workload-svc") - 32))


def test_step08_children_have_kserve_names(step08, find_config) -> None:
    children = render(step08, find_config)
    n = "mistral-3-distributed"
    assert set(children) >= {
        ("Deployment", f"{n}-kserve"),
        ("Service", f"{n}-kserve-workload-svc"),
        ("Deployment", f"{n}-kserve-router-scheduler"),
        ("Service", f"{n}-epp-service"),
        ("InferencePool", f"{n}-inference-pool"),
        ("InferenceModel", f"{n}-inference-model"),
        ("ServiceAccount", f"{n}-epp-sa"),
        ("Role", f"{n}-epp-role"),
        ("RoleBinding", f"{n}-epp-rb"),
        ("HTTPRoute", f"{n}-kserve-route"),
    }
    assert not [k for k in children if k[0] in ("LeaderWorkerSet", "AuthPolicy")]  # enable-auth: "false"
    for obj in children.values():
        ref = obj["metadata"]["ownerReferences"][0]
        assert (ref["kind"], ref["name"], ref["uid"], ref["controller"]) == (
            "LLMInferenceService", n, step08["metadata"]["uid"], True)


def test_workload_deployment_labels_and_merged_template(step08, find_config) -> None:
    dep = render(step08, find_config)[("Deployment", "mistral-3-distributed-kserve")]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/component"] == "llminferenceservice-workload"
    assert labels["app.kubernetes.io/part-of"] == "llminferenceservice"
    assert labels["kserve.io/component"] == "workload" and labels["llm-d.ai/role"] == "both"
    assert labels["kueue.x-k8s.io/queue-name"] == "llmd"
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()
    pod = dep["spec"]["template"]["spec"]
    main = next(c for c in pod["containers"] if c["name"] == "main")
    assert main["resources"]["limits"]["nvidia.com/gpu"] == "1"  # the user's part
    assert main["readinessProbe"]["httpGet"]["path"] == "/health"  # the preset's part
    argv = shlex.split(main["args"][0])
    assert argv[:3] == ["vllm", "serve", "/mnt/models"]
    assert argv[argv.index("--served-model-name") + 1] == "mistral-3-distributed"
    assert pod["nodeSelector"] == {"node.kubernetes.io/instance-type": "g6.4xlarge"}
    assert any(c["name"] == "modelcar" for c in pod["containers"])  # oci:// → modelcar
    assert pod["volumes"][-1]["name"] == "model-volume"


def test_epp_gets_default_config_and_pool_args(step08, find_config) -> None:
    children = render(step08, find_config)
    epp = children[("Deployment", "mistral-3-distributed-kserve-router-scheduler")]
    main = epp["spec"]["template"]["spec"]["containers"][0]
    args = main["args"]
    assert args[args.index("--pool-name") + 1] == "mistral-3-distributed-inference-pool"
    assert args[args.index("--pool-namespace") + 1] == "private-ai"
    config = yaml.safe_load(args[args.index("--config-text") + 1])
    assert [p["type"] for p in config["plugins"]] == [
        "single-profile-handler", "prefix-cache-scorer", "load-aware-scorer", "max-score-picker"]
    assert epp["spec"]["template"]["spec"]["serviceAccountName"] == "mistral-3-distributed-epp-sa"
    pool = children[("InferencePool", "mistral-3-distributed-inference-pool")]
    assert pool["apiVersion"] == "inference.networking.x-k8s.io/v1alpha2"
    assert pool["spec"]["selector"] == {
        "app.kubernetes.io/part-of": "llminferenceservice", "app.kubernetes.io/name": "mistral-3-distributed",
        "kserve.io/component": "workload"}
    assert pool["spec"]["extensionRef"]["name"] == "mistral-3-distributed-epp-service"
    assert pool["spec"]["targetPortNumber"] == 8000


def test_user_config_text_is_kept(step08, find_config) -> None:
    step08["spec"]["router"]["scheduler"] = {"template": {"containers": [
        {"name": "main", "args": ["--pool-name", "x", "--config-text", "kind: EndpointPickerConfig\n"]}]}}
    epp = render(step08, find_config)[("Deployment", "mistral-3-distributed-kserve-router-scheduler")]
    args = epp["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args.count("--config-text") == 1 and args[-1] == "kind: EndpointPickerConfig\n"


def test_route_paths_and_backends(step08, find_config) -> None:
    route = render(step08, find_config)[("HTTPRoute", "mistral-3-distributed-kserve-route")]
    rules = route["spec"]["rules"]
    paths = [r["matches"][0]["path"]["value"] for r in rules]
    assert paths == ["/private-ai/mistral-3-distributed/v1/completions",
                     "/private-ai/mistral-3-distributed/v1/chat/completions", "/private-ai/mistral-3-distributed"]
    assert rules[1]["backendRefs"][0]["kind"] == "InferencePool"
    assert rules[2]["backendRefs"][0] == {"kind": "Service", "name": "mistral-3-distributed-kserve-workload-svc",
                                          "port": 8000, "weight": 1}
    assert route["spec"]["parentRefs"][0]["name"] == "openshift-ai-inference"
    assert route["metadata"]["labels"]["app.kubernetes.io/component"] == "llminferenceservice-router"


def test_auth_enabled_adds_an_auth_policy(step08, find_config) -> None:
    del step08["metadata"]["annotations"]
    children = render(step08, find_config)
    policy = children[("AuthPolicy", "mistral-3-distributed-kserve-route-authn")]
    assert policy["spec"]["targetRef"]["name"] == "mistral-3-distributed-kserve-route"
    assert ("AuthPolicy", "mistral-3-distributed-kserve-route-authn") not in render(
        step08, find_config, ClusterFacts(auth_policy=False))


def test_prefill_decode(pd, find_config) -> None:
    # config_merge.go combineBaseRefsConfig order: scheduler, route, prefill, decode
    assert well_known_presets(pd["spec"]) == [
        "kserve-config-llm-scheduler", "kserve-config-llm-router-route",
        "kserve-config-llm-prefill-template", "kserve-config-llm-decode-template"]
    children = render(pd, find_config)
    decode = children[("Deployment", "my-model-pd-kserve")]
    prefill = children[("Deployment", "my-model-pd-kserve-prefill")]
    assert decode["metadata"]["labels"]["llm-d.ai/role"] == "decode"
    assert prefill["metadata"]["labels"]["llm-d.ai/role"] == "prefill"
    assert prefill["metadata"]["labels"]["app.kubernetes.io/component"] == "llminferenceservice-workload-prefill"
    sidecar = decode["spec"]["template"]["spec"]["initContainers"]
    assert any(c["name"] == "llm-d-routing-sidecar" and c["restartPolicy"] == "Always" for c in sidecar)
    assert "--port 8001" in decode["spec"]["template"]["spec"]["containers"][0]["args"][0]
    assert decode["spec"]["template"]["spec"]["serviceAccountName"] == "my-model-pd-kserve"
    epp = children[("Deployment", "my-model-pd-kserve-router-scheduler")]
    args = epp["spec"]["template"]["spec"]["containers"][0]["args"]
    config = yaml.safe_load(args[args.index("--config-text") + 1])
    assert {"prefill", "decode"} == {p["name"] for p in config["schedulingProfiles"]}
    inference_model = children[("InferenceModel", "my-model-pd-inference-model")]
    assert inference_model["spec"]["modelName"] == "meta-llama/Llama-3.1-8B-Instruct"


def test_worker_makes_a_leader_worker_set(step08, find_config) -> None:
    step08["spec"]["parallelism"] = {"tensor": 1, "data": 2, "dataLocal": 1}
    step08["spec"]["replicas"] = 1
    step08["spec"]["worker"] = {"containers": [{"name": "main", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}
    children = render(step08, find_config)
    assert ("Deployment", "mistral-3-distributed-kserve") not in children
    lws = children[("LeaderWorkerSet", "mistral-3-distributed-kserve-mn")]
    tpl = lws["spec"]["leaderWorkerTemplate"]
    assert tpl["size"] == 2
    leader = tpl["leaderTemplate"]["metadata"]["labels"]
    worker = tpl["workerTemplate"]["metadata"]["labels"]
    assert leader["app.kubernetes.io/component"] == "llminferenceservice-workload-leader"
    assert leader["kserve.io/component"] == "workload"
    assert worker["app.kubernetes.io/component"] == "llminferenceservice-workload-worker"
    assert "kserve.io/component" not in worker
    assert "--data-parallel-size 2" in tpl["workerTemplate"]["spec"]["containers"][0]["args"][0]


def test_tensor_two_alone_stays_a_deployment(step08, find_config) -> None:
    step08["spec"]["parallelism"] = {"tensor": 2}
    step08["spec"]["replicas"] = 1
    kinds = {k[0] for k in render(step08, find_config)}
    assert "LeaderWorkerSet" not in kinds and "Deployment" in kinds


def test_base_refs_merge_in_order_and_missing_ones_fail(step08, find_config) -> None:
    find_config.extra[("private-ai", "my-env")] = {"spec": {"template": {"containers": [
        {"name": "main", "env": [{"name": "VLLM_ADDITIONAL_ARGS", "value": "--max-model-len=8192"}]}]}}}
    step08["spec"]["baseRefs"] = [{"name": "my-env"}]
    spec = combine(step08, find_config)
    main = spec["template"]["containers"][0]
    assert {"name": "VLLM_ADDITIONAL_ARGS", "value": "--max-model-len=8192"} in main["env"]
    assert {"name": "VLLM_LOGGING_LEVEL", "value": "INFO"} in main["env"]  # preset env kept
    step08["spec"]["baseRefs"] = [{"name": "nope"}]
    with pytest.raises(PresetError, match='LLMInferenceServiceConfig "nope" from namespaces '
                                          r'\["private-ai", "kserve"\]: .*"nope" not found'):
        combine(step08, find_config)


def test_strategic_merge_rules() -> None:
    base = {"containers": [{"name": "main", "args": ["a"], "ports": [{"containerPort": 8000}]}],
            "tolerations": [{"key": "x"}]}
    patch = {"containers": [{"name": "main", "args": ["b"]}, {"name": "side"}], "tolerations": [{"key": "y"}]}
    out = strategic_merge(base, patch)
    assert out["containers"][0] == {"name": "main", "args": ["b"], "ports": [{"containerPort": 8000}]}
    assert out["containers"][1] == {"name": "side"}
    assert out["tolerations"] == [{"key": "y"}]


def test_prefill_worker_uses_the_prefill_parallelism(pd, find_config) -> None:
    pd["spec"]["prefill"]["parallelism"] = {"data": 4, "dataLocal": 2}
    pd["spec"]["prefill"]["worker"] = {"containers": [{"name": "main"}]}
    assert "kserve-config-llm-prefill-worker-data-parallel" in well_known_presets(pd["spec"])
    lws = render(pd, find_config)[("LeaderWorkerSet", "my-model-pd-kserve-mn-prefill")]
    assert lws["spec"]["leaderWorkerTemplate"]["size"] == 2
    args = lws["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"][0]["args"][0]
    assert "--data-parallel-size 4 --data-parallel-size-local 2" in args and "--headless" in args
    assert lws["metadata"]["labels"]["llm-d.ai/role"] == "prefill"


def test_go_template_expressions_in_the_user_spec_are_rendered(step08, find_config) -> None:
    """KServe renders the merged spec (presets + baseRefs + the service's own spec) as a Go template, so a
    user's ``{{ ChildName .ObjectMeta.Name `-epp-service` }}`` (KServe's precise-prefix sample) is filled in."""
    step08["spec"]["template"]["containers"][0]["env"] = [{"name": "VLLM_ADDITIONAL_ARGS", "value": (
        "--kv-events-config '{\"enable_kv_cache_events\":true,\"publisher\":\"zmq\",\"endpoint\":"
        "\"tcp://{{ ChildName .ObjectMeta.Name `-epp-service` }}:5557\",\"topic\":\"kv@${POD_IP}@m\"}'")}]
    step08["spec"]["router"]["scheduler"] = {"template": {"containers": [{"name": "main", "args": [
        "--pool-name", "{{ ChildName .ObjectMeta.Name `-inference-pool` }}",
        "--pool-namespace", "{{ .ObjectMeta.Namespace }}"]}]}}
    children = render(step08, find_config)
    n = "mistral-3-distributed"
    main = children[("Deployment", f"{n}-kserve")]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in main["env"]}
    assert f"tcp://{n}-epp-service:5557" in env["VLLM_ADDITIONAL_ARGS"]
    epp = children[("Deployment", f"{n}-kserve-router-scheduler")]["spec"]["template"]["spec"]["containers"][0]
    assert epp["args"][:4] == ["--pool-name", f"{n}-inference-pool", "--pool-namespace", "private-ai"]
    step08["spec"]["template"]["containers"][0]["env"] = [{"name": "X", "value": "{{ .Spec.Nope }}"}]
    with pytest.raises(PresetError, match="can't evaluate field Nope"):
        combine(step08, find_config)


@pytest.mark.parametrize("prefill", [False, True])
def test_pipeline_parallel_presets_are_not_shipped(step08, pd, find_config, prefill) -> None:
    """RHOAI 3.0 ships no *-worker-pipeline-parallel preset (config_merge.go keeps them out of
    WellKnownDefaultConfigs; config/llmisvc has none): a worker with pipeline parallelism fails to combine."""
    svc = pd if prefill else step08
    svc["spec"]["parallelism"] = {"tensor": 1, "pipeline": 2}
    svc["spec"]["worker"] = {"containers": [{"name": "main"}]}
    wanted = "kserve-config-llm-decode-worker-pipeline-parallel" if prefill else "kserve-config-llm-worker-pipeline-parallel"
    assert wanted in well_known_presets(svc["spec"])
    ns = svc["metadata"]["namespace"]
    with pytest.raises(PresetError) as err:
        combine(svc, find_config)
    assert err.value.reason == "CombineBaseError"
    assert err.value.message == (f'failed to get LLMInferenceServiceConfig "{wanted}" from namespaces ["{ns}", '
                                 f'"kserve"]: llminferenceserviceconfigs.serving.kserve.io "{wanted}" not found')


def test_presets_are_chosen_after_base_refs_merge(step08, find_config) -> None:
    """A baseRef that adds a DP worker switches the preset to the data-parallel one (config_merge.go resolvedSpec)."""
    find_config.extra[("private-ai", "dp")] = {"spec": {"parallelism": {"tensor": 1, "data": 2, "dataLocal": 1},
                                                        "worker": {"containers": [{"name": "main"}]}}}
    step08["spec"]["baseRefs"] = [{"name": "dp"}]
    step08["spec"]["replicas"] = 1
    lws = render(step08, find_config)[("LeaderWorkerSet", "mistral-3-distributed-kserve-mn")]
    args = lws["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"][0]["args"][0]
    assert "--headless" in args and "--data-parallel-size" in args  # only the worker-data-parallel preset says so
