"""LLMInferenceService builder, validation rules and YAML rendering."""

from __future__ import annotations

import json

import pytest
import yaml

from llmd_lab import manifests as m


def _epp_args(obj: dict) -> list[str]:
    return obj["spec"]["router"]["scheduler"]["template"]["containers"][0]["args"]


def test_replicas_layout_matches_step08_shape():
    obj = m.llm_inference_service(
        "mistral-3-distributed", "oci://registry.redhat.io/rhelai1/modelcar-mistral-small-24b-instruct-2501-quantized-w4a16:1.5",
        replicas=2, gpu="g6.4xlarge", queue="llmd",
    )  # fmt: skip
    assert obj["apiVersion"] == "serving.kserve.io/v1alpha1" and obj["kind"] == "LLMInferenceService"
    assert obj["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "llmd"
    assert obj["metadata"]["annotations"]["security.opendatahub.io/enable-auth"] == "false"
    spec = obj["spec"]
    assert spec["replicas"] == 2 and spec["parallelism"] == {"tensor": 1}
    assert spec["model"]["name"] == "mistral-3-distributed"
    tmpl = spec["template"]
    assert tmpl["nodeSelector"] == {"node.kubernetes.io/instance-type": "g6.4xlarge"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in tmpl["tolerations"]
    assert tmpl["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert "worker" not in spec and "prefill" not in spec
    assert m.validate(obj) == []


def test_kv_metric_workaround_and_default_scheduler_left_to_kserve():
    obj = m.llm_inference_service("qwen", "hf://Qwen/Qwen3-0.6B", model_name="Qwen/Qwen3-0.6B")
    args = _epp_args(obj)
    i = args.index("--kv-cache-usage-percentage-metric")
    assert args[i + 1] == "vllm:kv_cache_usage_perc"
    assert "--config-text" not in args  # KServe injects its default config when none is given
    plain = m.llm_inference_service("qwen", "hf://Qwen/Qwen3-0.6B", workarounds=False)
    assert "annotations" not in plain["metadata"]
    assert plain["spec"]["router"]["scheduler"] == {}


def test_course_scheduler_config_text_is_endpoint_picker_config():
    obj = m.llm_inference_service("qwen", "hf://Qwen/Qwen3-0.6B", scheduler="course")
    args = _epp_args(obj)
    cfg = yaml.safe_load(args[args.index("--config-text") + 1])
    assert cfg["kind"] == "EndpointPickerConfig"
    weights = {p["pluginRef"]: p.get("weight") for p in cfg["schedulingProfiles"][0]["plugins"]}
    assert weights == {
        "queue-scorer": 2,
        "kv-cache-utilization-scorer": 2,
        "prefix-cache-scorer": 3,
        "max-score-picker": None,
    }
    types = [p["type"] for p in cfg["plugins"]]
    assert "single-profile-handler" in types


def test_custom_scorer_weights_and_errors():
    cfg = m.scheduler_config(
        {"prefix-cache-scorer": 5, "queue-scorer": 1},
        parameters={"prefix-cache-scorer": {"hashBlockSize": 5}},
    )
    assert {"type": "prefix-cache-scorer", "parameters": {"hashBlockSize": 5}} in cfg["plugins"]
    with pytest.raises(m.ManifestError, match="unknown scorer 'prefix-scorer'"):
        m.scheduler_config({"prefix-scorer": 1})
    with pytest.raises(m.ManifestError, match="positive"):
        m.scheduler_config({"queue-scorer": 0})


def test_tensor_layout_and_tensor_over_gpus_per_node_is_rejected():
    obj = m.llm_inference_service("big", "hf://meta-llama/Llama-3.1-8B-Instruct", tensor=4, gpu="g6.12xlarge")
    assert obj["spec"]["template"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "4"
    assert "--tensor-parallel-size=4" in obj["spec"]["template"]["containers"][0]["env"][0]["value"]
    m.validate(obj)
    bad = m.llm_inference_service("big", "hf://meta-llama/Llama-3.1-8B-Instruct", tensor=2, gpu="g6.4xlarge")
    with pytest.raises(m.ManifestError) as err:
        m.validate(bad)
    assert "tensor=2" in str(err.value) and "g6.12xlarge" in str(err.value)


def test_model_that_cannot_fit_says_how_many_gpus():
    obj = m.llm_inference_service(
        "llama70",
        "hf://meta-llama/Llama-3.1-70B-Instruct",
        model_name="meta-llama/Llama-3.1-70B-Instruct",
        tensor=4,
        gpu="g6.12xlarge",
    )
    with pytest.raises(m.ManifestError) as err:
        m.validate(obj)
    msg = str(err.value)
    # 70.55 B params × 2 bytes (llmd_lab/facts/models.yaml) on L4s of 22.5 GiB as the driver reports them
    assert "needs ~131 GiB" in msg and "≥ 8 GPUs" in msg
    # two nodes are data parallel on RHOAI 3.0 (the only multi-node presets it ships): each rank holds a full
    # copy, so two 4-GPU nodes give no more room than one
    mn = m.llm_inference_service(
        "llama70",
        "hf://meta-llama/Llama-3.1-70B-Instruct",
        model_name="meta-llama/Llama-3.1-70B-Instruct",
        tensor=4,
        nodes=2,
        gpu="g6.12xlarge",
    )
    assert mn["spec"]["worker"]["containers"][0]["name"] == "main"
    assert mn["spec"]["parallelism"] == {"tensor": 4, "data": 2, "dataLocal": 1}
    # the data-parallel preset renders --tensor-parallel-size from parallelism.tensor; the pod does not repeat it
    assert "--tensor-parallel-size" not in json.dumps(mn["spec"]["template"])
    with pytest.raises(m.ManifestError, match="needs ~131 GiB"):
        m.validate(mn)
    single = m.llm_inference_service("tp4", "hf://Qwen/Qwen3-8B", tensor=4, gpu="g6.12xlarge")
    assert "--tensor-parallel-size=4" in json.dumps(single["spec"]["template"])  # single-node presets ignore tensor


def test_unknown_model_warns_and_schema_errors_name_the_field():
    warnings = m.validate(m.llm_inference_service("x", "hf://org/unknown-model", gpu="g6.4xlarge"))
    assert warnings and "not in MODEL_SIZES" in warnings[0]
    obj = m.llm_inference_service("x", "hf://Qwen/Qwen3-0.6B")
    obj["spec"]["replicas"] = -1
    obj["spec"]["model"]["uri"] = "ftp://nope"
    with pytest.raises(m.ManifestError) as err:
        m.validate(obj)
    assert any(p.startswith("spec.model.uri") for p in err.value.problems)
    assert any(p.startswith("spec.replicas") for p in err.value.problems)
    obj = m.llm_inference_service("Bad_Name", "hf://Qwen/Qwen3-0.6B")
    with pytest.raises(m.ManifestError, match="DNS-1123"):
        m.validate(obj)


def test_prefill_decode_adds_nixl_and_pd_config():
    obj = m.llm_inference_service(
        "pd", "hf://Qwen/Qwen3-8B", prefill=m.Prefill(replicas=2), scheduler={"queue-scorer": 1}
    )
    pre = obj["spec"]["prefill"]
    assert pre["replicas"] == 2
    env = {e["name"]: e for e in pre["template"]["containers"][0]["env"]}
    assert "NixlConnector" in env["VLLM_ADDITIONAL_ARGS"]["value"]
    assert env["VLLM_NIXL_SIDE_CHANNEL_HOST"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    args = _epp_args(obj)
    cfg = yaml.safe_load(args[args.index("--config-text") + 1])
    assert [p["name"] for p in cfg["schedulingProfiles"]] == ["prefill", "decode"]
    assert {"type": "pd-profile-handler", "parameters": {"threshold": 0}} in cfg["plugins"]


def test_yaml_round_trip_with_comments_on_workarounds():
    obj = m.llm_inference_service("qwen", "hf://Qwen/Qwen3-0.6B", queue="default", scheduler="course")
    text = m.to_yaml(obj)
    assert "# RHOAI 3.0 workaround: auth" in text and "RHOAIENG-41868" in text
    assert m.from_yaml(text) == [obj]
    assert m.from_yaml(m.to_yaml([obj, obj])) == [obj, obj]


def test_epp_pool_args_are_concrete_and_namespace_is_filled_on_placement():
    obj = m.llm_inference_service("qwen", "hf://Qwen/Qwen3-0.6B")
    args = _epp_args(obj)
    assert args[args.index("--pool-name") + 1] == "qwen-inference-pool"
    assert args[args.index("--pool-namespace") + 1] == "{{ .ObjectMeta.Namespace }}"
    placed = m.with_namespace(obj, "private-ai")
    assert placed["metadata"]["namespace"] == "private-ai"
    assert _epp_args(placed)[args.index("--pool-namespace") + 1] == "private-ai"
    assert "namespace" not in obj["metadata"]  # the original is untouched


def test_to_yaml_writes_shared_values_out_in_full_without_anchors():
    shared = {"nvidia.com/gpu": "1"}
    obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "resources": {"limits": shared, "requests": shared}}]}}  # fmt: skip
    text = m.to_yaml(obj)
    assert "&id" not in text and "*id" not in text
    assert text.count("nvidia.com/gpu") == 2
