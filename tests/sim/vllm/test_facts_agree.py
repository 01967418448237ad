"""One source for GPU and model facts: the library's tables (manifests) and the simulator's profiles read
``llmd_lab/facts`` and agree on every GPU node type and every model."""

from __future__ import annotations

import pytest

from llmd_lab import facts, manifests
from llmd_lab.sim.vllm import profiles


@pytest.mark.parametrize("instance_type", sorted(manifests.GPU_TYPES))
def test_every_node_type_names_a_simulated_gpu_with_the_same_memory(instance_type: str) -> None:
    node = manifests.GPU_TYPES[instance_type]
    gpu = profiles.resolve_gpu(node.product)
    assert gpu.product == node.product
    assert node.memory_gib == pytest.approx(gpu.memory_bytes / 2**30, abs=0.05)


def test_every_model_the_simulator_knows_has_the_librarys_size_and_back() -> None:
    simulated = profiles.models()
    assert set(simulated) == set(facts.models())
    for model_id, profile in simulated.items():
        size = manifests.model_size(f"hf://{model_id}")
        assert size is not None, model_id
        assert round(size.params_b * 1e9) == profile.num_parameters
        assert size.weights_gib * 2**30 == profile.weight_bytes, model_id  # one formula, one figure
        for alias in profile.aliases:
            assert manifests.model_size(alias) == size, alias


def test_the_data_is_not_in_the_simulator_package_any_more() -> None:
    from importlib import resources

    assert not resources.files("llmd_lab.sim.vllm").joinpath("data", "models.yaml").is_file()
    assert not resources.files("llmd_lab.sim.vllm").joinpath("data", "gpus.yaml").is_file()
