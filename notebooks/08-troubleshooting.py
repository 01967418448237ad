# %% [markdown]
# # 08 · Troubleshooting: break it on purpose, let the doctor find it
#
# **Goal:** recognise the failures people actually hit with llm-d on OpenShift AI 3.0, read the evidence, and
# apply the fix — on throw-away services, one breakage at a time.
#
# **Time:** 25 minutes · **Needs:** notebook 01 green and a few free GPUs. Every broken service is deleted
# again at the end of its step; safe to re-run.
#
# **What this notebook does:**
#
# 1. Pods Pending: asks for more GPUs than a node has, and lets the doctor name the cause.
# 2. A Kueue queue that does not exist.
# 3. Forgetting the OpenShift AI 3.0 workarounds (auth annotation, KV-cache metric name).
# 4. A model that does not fit: out of memory.
# 5. The wrong model name in a request.
# 6. A table of the other failures the doctor explains: gated model, presets, Kueue label, 403, quota.
# 7. Charts how long each breakage took to diagnose; ends with a check that the doctor found every one.
#
# **Instructor talking points:**
#
# * Read events before logs: Pending is a scheduling problem, CrashLoopBackOff a container problem.
# * Both 3.0 workarounds are silent failures: nothing errors, things just never get Ready or never balance.
# * A gateway answering 500 while a passthrough Route works is the known TLS-origination issue of 3.0; the
#   doctor probes both on a real cluster (`doctor.run(conn, name)` with probing on).
# * Let the room guess the cause from the symptom before showing the doctor's table.
#
# **Chart:** Seconds from breaking each service to the doctor's diagnosis, per breakage.
#
# The doctor (`llmd_lab.doctor.run`) reads the service's conditions, its pods and their scheduling events, Kueue's
# view, container logs and the endpoint picker's flags, and turns them into rows of *evidence* and *fix* — the
# same things you would collect with `oc describe` and `oc logs`, in one table.

# %% tags=["parameters"]
namespace = None  # your project; None: your saved settings (notebook 00), else your workbench / `oc login` project
queue = None  # Kueue LocalQueue for your services; None: saved settings, else your project's only LocalQueue
name = "qwen"  # the healthy service from notebook 02 (used for the wrong-model-name case)
model = "Qwen/Qwen3-0.6B"
replicas = 2
gpu = "g6.4xlarge"
max_model_len = 8192  # longest prompt + answer vLLM accepts (a model's native length may not fit one L4)
requests = 3
symptom_timeout_s = 120  # how long to wait for each breakage to show
ready_timeout_s = 900
fast = False
seed = 0

# %%
import time

import altair as alt
import pandas as pd
from IPython.display import display

# llmd_lab.viz is imported for its side effect: altair draws charts as SVG in the kernel (no CDN needed)
from llmd_lab import connect, deploy, doctor, k8s, manifests, settings, traffic, viz

if fast:
    symptom_timeout_s, ready_timeout_s = min(symptom_timeout_s, 60), min(ready_timeout_s, 180)
cfg = settings.load(namespace=namespace, queue=queue)  # set once in notebook 00; parameters override
conn = connect(namespace=cfg.namespace)
cfg = settings.discover(conn, cfg)
# This lesson breaks services on purpose: on a shared cluster only with your explicit opt-in and room in your quota.
settings.require_opt_in(conn, cfg, "Notebook 08 (breaks services on purpose)", need_gpus=replicas + 1)
label = {"llmd-lab/workshop": "true"}
timeline = []

def break_and_diagnose(case, svc, expect):
    """Apply a broken service, wait until the doctor reports `expect` (a regex), show the findings."""
    start = time.monotonic()
    deploy.apply(conn, svc, validate=False)  # skip our own validation: we want the cluster's reaction
    seen = {}

    def diagnosed():
        findings = doctor.run(conn, case, probe=False)
        bad = findings[findings["status"] != "pass"]
        match = bad[(bad["check"] + " " + bad["evidence"]).str.contains(expect, case=False, regex=True)]
        seen["all"], seen["match"] = bad, match
        return len(match) > 0

    found = k8s.wait_for(diagnosed, timeout_s=symptom_timeout_s, interval_s=1.0)
    timeline.append({"case": case, "seconds_to_diagnosis": time.monotonic() - start, "diagnosed": found})
    display((seen.get("match") if found else seen.get("all"))[["check", "status", "evidence", "fix"]])
    return found

def clean(case):
    deploy.delete(conn, case)

# %% [markdown]
# ## 1 · Pods Pending: not enough GPUs
#
# Ask for more replicas than there are free GPUs. The scheduler cannot place the extra pods and says why in an
# event (`Insufficient nvidia.com/gpu`). Fix: fewer replicas, more GPU nodes, or free someone else's. In a
# Kueue-managed project Kueue stops them first: the pods stay gated (`SchedulingGated`) with
# `insufficient unused quota for nvidia.com/gpu` until the ClusterQueue behind your LocalQueue has room, and the
# scheduler never sees them. Below the doctor's table, the same evidence the way you would collect it by hand: the Pending pods, and one
# pod's events.

# %%
case = "broken-gpus"
ok_gpus = break_and_diagnose(case, manifests.llm_inference_service(
    case, f"hf://{model}", queue=cfg.queue, replicas=12, gpu=gpu, labels=label, max_model_len=max_model_len),
    expect=r"Insufficient nvidia\.com/gpu|insufficient unused quota")
pod = deploy.pods_frame(conn, case).query("phase == 'Pending'")["pod"].iloc[0]
# !oc get pods -n {conn.namespace} -l app.kubernetes.io/name={case} --field-selector=status.phase=Pending
# !oc describe pod {pod} -n {conn.namespace} | grep -A5 Events
clean(case)

# %% [markdown]
# ## 2 · A Kueue queue that does not exist
#
# Where Kueue manages GPUs, a workload carries the label `kueue.x-k8s.io/queue-name`. A typo there leaves the pods
# waiting for an admission that never comes. Fix: use a LocalQueue that exists in the namespace
# (`oc get localqueues`).

# %%
case = "broken-queue"
ok_queue = break_and_diagnose(case, manifests.llm_inference_service(
    case, f"hf://{model}", replicas=1, gpu=gpu, labels=label, queue="no-such-queue", max_model_len=max_model_len),
    expect=r"no-such-queue")
clean(case)

# %% [markdown]
# ## 3 · Forgetting the OpenShift AI 3.0 workarounds
#
# Without `security.opendatahub.io/enable-auth: "false"` KServe wires the service into Connectivity Link's auth,
# which is broken in 3.0; without `--kv-cache-usage-percentage-metric` the endpoint picker reads a KV-cache metric
# name that newer vLLM no longer exports, so its KV scorer sees every pod as empty. The doctor checks both.

# %%
case = "broken-workarounds"
ok_workarounds = break_and_diagnose(case, manifests.llm_inference_service(
    case, f"hf://{model}", queue=cfg.queue, replicas=1, gpu=gpu, labels=label, workarounds=False, max_model_len=max_model_len),
    expect=r"kv-cache-usage-percentage-metric|enable-auth|AuthPolicy")
clean(case)

# %% [markdown]
# ## 4 · A model that does not fit: out of memory
#
# vLLM reserves `--gpu-memory-utilization` of the GPU (default 0.9) for the weights, activations and the KV
# cache. Give it far too little and the KV cache has no room left: vLLM stops at start-up with
# `No available memory for the cache blocks`, and Kubernetes restarts it again and again: `CrashLoopBackOff`.
# This is the same failure as a model too big for its GPU, triggered cheaply — the small model, nothing large
# to download. The last log lines say why (`oc logs --previous`). Fix: a higher `gpu-memory-utilization`, a
# shorter `--max-model-len`, a quantised model, or tensor parallelism (notebook 06).

# %%
case = "broken-oom"
ok_oom = break_and_diagnose(case, manifests.llm_inference_service(
    case, f"hf://{model}", queue=cfg.queue, replicas=1, gpu=gpu, labels=label,
    vllm_args=("--disable-uvicorn-access-log", "--gpu-memory-utilization", "0.03")),
    expect=r"out of memory|OOMKilled|no available memory for the cache")
pod = deploy.pods_frame(conn, case).query("role != 'scheduler'")["pod"].iloc[0]
# !oc logs {pod} -n {conn.namespace} --previous --tail=3
clean(case)

# %% [markdown]
# ## 5 · The wrong model name
#
# The service is fine but clients send a name it does not serve: every request gets a 404. The served name is
# `spec.model.name`, not the Hugging Face id. Fix: send `deploy.endpoints(...).model`.

# %%
if deploy.get(conn, name) is None:
    deploy.apply(conn, manifests.llm_inference_service(name, f"hf://{model}", queue=cfg.queue, replicas=replicas, gpu=gpu,
                                                       labels=label, max_model_len=max_model_len))
deploy.wait_ready(conn, name, timeout_s=ready_timeout_s, progress=not fast)
ep = deploy.endpoints(conn, name)
start = time.monotonic()
wrong = traffic.run(traffic.Target(ep.gateway, "not-" + ep.model, **cfg.tls), traffic.random_prompts(requests, seed=seed),
                    concurrency=1, progress=False)
right = traffic.run(traffic.Target(ep.gateway, ep.model, **cfg.tls), traffic.random_prompts(requests, seed=seed),
                    concurrency=1, progress=False)
ok_name = bool((wrong["status"] == 404).all() and right["ok"].all())
timeline.append({"case": "wrong-model-name", "seconds_to_diagnosis": time.monotonic() - start, "diagnosed": ok_name})
print("wrong name →", wrong["status"].unique().tolist(), wrong["error"].iloc[0][:120])
print("right name →", right["status"].unique().tolist())

# %% [markdown]
# ## More failures you can meet (the doctor explains them too)
#
# These are not broken on purpose here — each costs a download, someone else's project or a quota — but they are
# the ones attendees hit on a real OpenShift AI 3.0 cluster, and `doctor.run(conn, name)` names each with its fix:
#
# | symptom | what the cluster says | fix |
# |---|---|---|
# | a gated model (`meta-llama/*`) without a token | pod `Init:CrashLoopBackOff`; the `storage-initializer` log ends in `GatedRepoError: 401 … Cannot access gated repo` | accept the licence on Hugging Face, put the token in a Secret (key `HF_TOKEN`) and annotate the service `serving.kserve.io/storageSecretName: <secret>`; or use an ungated build (`RedHatAI/…`) |
# | KServe cannot combine its presets | condition `PresetsCombined=False`, reason `CombineBaseError` (e.g. a `baseRefs` name that does not exist, or a layout whose preset RHOAI 3.0 does not ship such as pipeline parallelism); *no* pods at all | fix `spec.baseRefs` / the parallelism fields (notebook 06 shows the layouts 3.0 can deploy) |
# | the Kueue queue label is missing in a Kueue-managed project | `apply` is refused: `admission webhook "kserve-llmisvc-kueuelabels-validator.opendatahub.io" denied the request: Kueue label validation failed: missing required label "kueue.x-k8s.io/queue-name"`; nothing is created | set `queue` once in notebook 00 (ask your instructor for the LocalQueue); every notebook adds the label |
# | 403 Forbidden | `… is forbidden: User "…" cannot … in the namespace "…"` | work in your own project (`oc project -q`), or ask its admin for the `edit` role; the doctor prints the exact `oc adm policy` command |
# | the project's quota is used up | the ReplicaSet's `FailedCreate` event: `exceeded quota: …, requested: requests.nvidia.com/gpu=1, used: …, limited: …` | delete services you no longer need (notebook 10), lower replicas, or ask for more quota |
# | no GPU free (or none of that type) | pod `Pending`: `0/N nodes are available: … Insufficient nvidia.com/gpu` (step 1 above) | fewer replicas/tensor, free GPUs, or scale the GPU MachineSet |
#
# (Sources: red-hat-data-services/kserve@rhoai-3.0 `pkg/controller/llmisvc/workload_storage.go` and
# `config_merge.go`; red-hat-data-services/rhods-operator@rhoai-3.0 `internal/webhook/kueue/validating.go`;
# kubernetes `plugin/pkg/admission/resourcequota/controller.go`. The lab reproduces all of them except the
# ResourceQuota refusal, which it does not enforce — see docs/fidelity.md.)

# %% [markdown]
# ## How long each took to show
#
# Some failures are instant (a refused request), others take minutes on a real cluster (a crash loop's back-off
# grows). Knowing which is which tells you how long to wait before you start digging.

# %% tags=["key-chart"]
tl = pd.DataFrame(timeline)
alt.Chart(tl, title="Time from breaking to diagnosis", width=420).mark_bar().encode(
    x=alt.X("seconds_to_diagnosis:Q", title="seconds"),
    y=alt.Y("case:N", sort=None, title=None, axis=alt.Axis(labelLimit=300)),
    color=alt.Color("diagnosed:N", scale=alt.Scale(domain=[True, False], range=["#188038", "#d93025"])))

# %% [markdown]
# ## Did it work?

# %%
results = {"pending GPUs": ok_gpus, "Kueue queue": ok_queue, "3.0 workarounds": ok_workarounds, "OOM": ok_oom,
           "wrong model name": ok_name}
missed = [k for k, v in results.items() if not v]
if missed:
    raise AssertionError(f"Notebook 08 check FAILED: the doctor did not diagnose {missed} within "
                         f"{symptom_timeout_s}s. Hint: raise symptom_timeout_s on a slow cluster, and read the tables above.")
print(f"✅ 08 passed: all {len(results)} breakages diagnosed; longest took {tl['seconds_to_diagnosis'].max():.1f}s.")

from llmd_lab.course import progress

progress.record(conn, "08-troubleshooting")  # for the instructor's class view (`llmd-lab class`)
