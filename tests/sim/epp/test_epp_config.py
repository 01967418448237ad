"""EndpointPickerConfig loading: the configs the workshop uses load; bad ones fail naming the problem."""

from __future__ import annotations

import pytest
from epp_helpers import DATA

from llmd_lab.sim.epp.config import KSERVE_DEFAULT_CONFIG, load_config
from llmd_lab.sim.epp.configs import HEAD
from llmd_lab.sim.epp.plugins.base import ConfigError


def weights(cfg, profile="default"):
    return {s.name: w for s, w in cfg.scheduler.profiles[profile].scorers}


def test_kserve_default_config_loads_with_int_weights_and_picker():
    cfg = load_config((DATA / "kserve-default.yaml").read_text())
    assert weights(cfg) == {"prefix-cache-scorer": 2, "load-aware-scorer": 1}
    assert cfg.scheduler.handler.type_name == "single-profile-handler"
    assert cfg.scheduler.profiles["default"].picker.type_name == "max-score-picker"
    assert [p.type_name for p in cfg.pre_request] == ["prefix-cache-scorer"]


def test_course_in_a_box_config_defaults_a_picker():
    cfg = load_config((DATA / "course-in-a-box.yaml").read_text())
    assert weights(cfg) == {"queue-scorer": 2, "kv-cache-utilization-scorer": 2, "prefix-cache-scorer": 3}
    assert cfg.scheduler.profiles["default"].picker.type_name == "max-score-picker"
    assert "max-score-picker" in cfg.plugins


def test_kserve_pd_config_never_scores_prefix():
    cfg = load_config((DATA / "kserve-pd.yaml").read_text())
    assert set(cfg.scheduler.profiles) == {"prefill", "decode"}
    assert cfg.scheduler.handler.threshold == 0
    for profile in cfg.scheduler.profiles.values():
        assert [s.type_name for s, _ in profile.scorers] == ["queue-scorer"]


def test_playbook_pd_config_is_rejected_like_the_strict_go_decoder():
    text = (DATA / "playbook-pd.yaml").read_text()
    with pytest.raises(ConfigError, match=r'unknown field "plugins\[0\]\.config".*parameters'):
        load_config(text)
    fixed = load_config(text.replace("  config:", "  parameters:"))
    assert fixed.scheduler.handler.threshold == 500
    assert weights(fixed, "decode") == {"prefix-cache-scorer": 2, "load-aware-scorer": 1}


def test_fractional_weight_is_rejected():
    with pytest.raises(ConfigError, match=r"kv-cache-utilization-scorer.*weight must be an integer, got 1\.5"):
        load_config((DATA / "playbook-kv-aware.yaml").read_text())


def test_no_profiles_defaults_to_every_filter_scorer_picker_with_weight_one():
    cfg = load_config(HEAD + "plugins:\n- type: queue-scorer\n- type: decode-filter\n- type: random-picker\n")
    profile = cfg.scheduler.profiles["default"]
    assert [f.name for f in profile.filters] == ["decode-filter"]
    assert weights(cfg) == {"queue-scorer": 1}
    assert profile.picker.type_name == "random-picker"
    assert cfg.scheduler.handler.type_name == "single-profile-handler"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("plugins:\n- type: nope-scorer\n", "plugin type 'nope-scorer' is not found in registry"),
        ("plugins:\n- type: queue-scorer\n  weight: 2\n", 'unknown field "plugins[0].weight"'),
        ("plugins:\n- type: queue-scorer\nextra: 1\n", 'unknown field "extra"'),
        ("plugins:\n- type: queue-scorer\n- type: queue-scorer\n", "duplicate plugin name 'queue-scorer'"),
        ("plugins:\n- type: queue-scorer\nschedulingProfiles:\n- name: default\n  plugins:\n  - pluginRef: kv\n",
         "profile 'default' references plugin 'kv'"),
        ("plugins:\n- type: load-aware-scorer\n  parameters: {threshold: lots}\n",
         "bad parameter 'threshold': expected an integer"),
        ("plugins:\n- type: queue-scorer\n- type: pd-profile-handler\n- type: single-profile-handler\n",
         "only one profile handler"),
        ("plugins:\n- type: queue-scorer\nschedulingProfiles:\n- name: a\n  plugins: []\n- name: b\n  plugins: []\n",
         "no profile handler was specified"),
        ("plugins:\n- name: x\n", "plugin 'x' is missing a type"),
        ("plugins:\n- type: active-request-scorer\n  parameters: {requestTimeout: soon}\n", "invalid duration"),
        ("plugins:\n- type: queue-scorer\n- type: single-profile-handler\nschedulingProfiles:\n- name: a\n"
         "  plugins: []\n- name: b\n  plugins: []\n", "cannot support multiple scheduling profiles"),
    ],
)
def test_bad_configs_name_the_problem(body, message):
    with pytest.raises(ConfigError) as info:
        load_config(HEAD + body)
    assert message in str(info.value)


def test_wrong_api_version_and_bad_yaml():
    with pytest.raises(ConfigError, match="expected apiVersion"):
        load_config(KSERVE_DEFAULT_CONFIG.replace("x-k8s.io/v1alpha1", "k8s.io/v1"))
    with pytest.raises(ConfigError, match="failed to decode"):
        load_config(HEAD + "plugins: [\n")


def test_unknown_plugin_parameters_are_ignored_as_json_unmarshal_ignores_them():
    """A typo passes on the cluster and leaves the default in force: the lab is no stricter."""
    cfg = load_config(HEAD + "plugins:\n- type: load-aware-scorer\n  parameters: {treshold: 3}\n"
                      "- type: queue-scorer\n  parameters: {anything: 1}\n")
    scorer = next(p for p in cfg.plugins.values() if p.type_name == "load-aware-scorer")
    assert scorer.threshold == 128  # QueueThresholdDefault
