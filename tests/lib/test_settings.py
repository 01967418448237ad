"""Settings set once (notebook 00) and picked up by every notebook; papermill parameters still override."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from llmd_lab import settings


def test_saved_settings_are_loaded_and_parameters_override_them(tmp_path, monkeypatch):
    path = tmp_path / "settings.yaml"
    monkeypatch.setenv("LLMD_LAB_SETTINGS", str(path))
    settings.save(settings.Settings(namespace="team-a", queue="gpu-queue", insecure_skip_verify=True))
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    loaded = settings.load()
    assert (loaded.namespace, loaded.queue, loaded.tls) == ("team-a", "gpu-queue", {"ca_file": None, "insecure": True})
    # a parameter left at None keeps the saved value; a given one wins
    again = settings.load(namespace="team-b", queue=None)
    assert (again.namespace, again.queue) == ("team-b", "gpu-queue") and "parameters" in again.source


def test_no_file_means_nothing_hard_coded(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMD_LAB_SETTINGS", str(tmp_path / "absent.yaml"))
    cfg = settings.load()
    assert cfg.namespace is None and cfg.queue is None and cfg.source == "defaults"


def test_unknown_settings_are_refused_with_the_known_names(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("namespce: typo\n")
    with pytest.raises(ValueError, match=r"unknown setting.*namespce.*known"):
        settings.load(path)


def test_the_hf_token_is_never_shown(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_abcdefghijklmnopqrstuvwxyz")
    cfg = settings.load(tmp_path / "absent.yaml")
    assert cfg.hf_token() == "hf_abcdefghijklmnopqrstuvwxyz"
    assert "hf_abc" not in repr(cfg) and "hf_token=set" in repr(cfg)


def test_disruptive_lessons_need_an_opt_in_and_quota_on_a_cluster_but_not_in_the_lab(monkeypatch):
    from llmd_lab import preflight

    cluster = SimpleNamespace(is_lab=False, server="https://api.example:6443", namespace="team-a")
    with pytest.raises(PermissionError, match="allow_disruptive=True"):
        settings.require_opt_in(cluster, settings.Settings(), "08 troubleshooting")  # type: ignore[arg-type]
    asked: list[int] = []

    def quota(conn, *, need_gpus=0):
        asked.append(need_gpus)
        free = 2
        status = preflight.PASS if need_gpus <= free else preflight.FAIL
        return [preflight.Check("GPU quota in team-a", status, f"gpu-quota: 2/4 GPUs used; the plan needs {need_gpus}")]

    monkeypatch.setattr(preflight, "check_quota", quota)
    opted = settings.Settings(allow_disruptive=True)
    settings.require_opt_in(cluster, opted, "06", need_gpus=2)  # type: ignore[arg-type]
    with pytest.raises(PermissionError, match="needs 4 GPUs"):
        settings.require_opt_in(cluster, opted, "06", need_gpus=4)  # type: ignore[arg-type]
    assert asked == [2, 4]
    settings.require_opt_in(SimpleNamespace(is_lab=True), settings.Settings(), "08")  # type: ignore[arg-type]


def test_discover_leaves_the_queue_unset_when_localqueues_are_not_readable(monkeypatch):
    import json

    from kubernetes.client.rest import ApiException

    from llmd_lab import access, k8s

    def forbidden(*a, **k):
        exc = ApiException(status=403, reason="Forbidden")
        exc.body = json.dumps({"message": 'localqueues.kueue.x-k8s.io is forbidden: User "user1" cannot list resource '
                                          '"localqueues" in API group "kueue.x-k8s.io" in the namespace "user1"'})
        raise access.explain(exc)

    monkeypatch.setattr(k8s, "has_kind", lambda *a: True)
    monkeypatch.setattr(k8s, "list_objects", forbidden)
    monkeypatch.setattr(k8s, "namespace_labels", lambda conn, ns: {})
    cfg = settings.Settings()
    assert settings.discover(SimpleNamespace(namespace="user1"), cfg) is cfg  # type: ignore[arg-type]


@pytest.mark.parametrize("label", ["kueue.openshift.io/managed", "kueue-managed"])
def test_discover_says_which_queue_label_a_kueue_managed_project_gets(monkeypatch, capsys, label):
    """rhods-operator@rhoai-3.0 pkg/cluster/const.go: either label set to "true" makes a namespace Kueue-managed,
    and internal/webhook/kueue/validating.go then refuses a workload without kueue.x-k8s.io/queue-name."""
    from llmd_lab import k8s

    monkeypatch.setattr(k8s, "has_kind", lambda *a: False)
    monkeypatch.setattr(k8s, "namespace_labels", lambda conn, ns: {label: "true"} if ns == "team-a" else {})
    conn = SimpleNamespace(namespace="team-a")
    settings.discover(conn, settings.Settings(queue="workshop", source="settings.yaml"))  # type: ignore[arg-type]
    said = capsys.readouterr().out
    assert f"team-a is Kueue-managed ({label}=true)" in said and "kueue.x-k8s.io/queue-name=workshop" in said
    settings.discover(conn, settings.Settings())  # type: ignore[arg-type]
    said = capsys.readouterr().out
    assert "no queue is set" in said and "set queue=<name> in notebook 00" in said
    settings.discover(SimpleNamespace(namespace="user1"), settings.Settings(queue="q"))  # type: ignore[arg-type]
    assert capsys.readouterr().out == "", "an unmanaged project gets no Kueue sentence"


def test_preflight_fails_a_kueue_managed_project_without_a_queue_and_names_the_label_with_one(monkeypatch):
    """rhods-operator@rhoai-3.0 internal/webhook/kueue/validating.go denies a workload without the queue label in a
    managed namespace, so preflight fails before the first apply would, and says which label services will carry."""
    from llmd_lab import k8s, preflight

    monkeypatch.setattr(k8s, "namespace_labels", lambda conn, ns: {"kueue-managed": "true"})
    conn = SimpleNamespace(namespace="team-a")
    [row] = preflight.check_kueue_label(conn)  # type: ignore[arg-type]
    assert row.status == preflight.FAIL and "kueue-managed=true" in row.evidence and "settings" in row.fix
    [row] = preflight.check_kueue_label(conn, queue="workshop")  # type: ignore[arg-type]
    assert row.status == preflight.PASS and "kueue.x-k8s.io/queue-name=workshop" in row.evidence
    monkeypatch.setattr(k8s, "namespace_labels", lambda conn, ns: {"kueue-managed": "false"})
    [row] = preflight.check_kueue_label(conn)  # type: ignore[arg-type]
    assert row.status == preflight.PASS and "not Kueue-managed" in row.evidence
