# %% [markdown]
# # 01 · Preflight: is this cluster ready for llm-d?
#
# **Goal:** check every prerequisite of llm-d on OpenShift AI 3.0 and know the fix for each one that fails.
#
# **Time:** 10 minutes · **Needs:** notebook 00 (a connection); cluster-reader rights help but are not
# required.
#
# **What this notebook does:**
#
# 1. Runs every preflight check (`preflight.run`) for the GPUs this workshop needs.
# 2. Shows the checks people trip over, with the evidence and the fix for each.
# 3. Ends with a check: no check failed.
#
# **Instructor talking points:**
#
# * Preflight turns a two-hour debugging session into a two-minute table: run it before the workshop, and
#   again at its start.
# * The two RHOAI 3.0 known issues the next notebook works around (auth annotation, KV-cache metric name) are
#   *not* preflight failures: they are fixed in the manifest.
# * On the lab's `fresh` profile (`llmd-lab up --profile fresh`) this table is mostly red — a good way to show
#   what each fix looks like without breaking a real cluster.
#
# **Chart:** Preflight checks by status (pass, warn, fail).
#
# A distributed model touches many moving parts: OpenShift itself, the OpenShift AI operator and its
# DataScienceCluster, Connectivity Link for auth policies, cert-manager, the GPU operator and Node Feature
# Discovery, LeaderWorkerSet for multi-node models, Kueue for quotas, and a Gateway named
# `openshift-ai-inference`. When one of them is missing the symptom usually shows up much later, far from the
# cause. Checking first is cheaper.

# %% tags=["parameters"]
namespace = None  # your project; None: your saved settings (notebook 00), else your workbench / `oc login` project
name = "qwen"
model = "Qwen/Qwen3-0.6B"
replicas = 2  # the GPU check compares replicas × tensor with free GPUs
tensor = 1
queue = None  # Kueue LocalQueue for your services; None: saved settings, else your project's only LocalQueue
requests = 0
fast = False
seed = 0

# %%
from llmd_lab import connect, preflight, settings

cfg = settings.load(namespace=namespace, queue=queue)  # set once in notebook 00; parameters override
conn = connect(namespace=cfg.namespace)
cfg = settings.discover(conn, cfg)
print(conn.summary())

# %% [markdown]
# ## Run every check
#
# Each row is one check with what was **seen** (evidence) and what to **do** (fix). Green passes, yellow warns,
# red fails. Read the evidence even when a row is green: it tells you the versions and names you will meet
# later.
#
# Preflight has two audiences. As an **attendee** you cannot read cluster-wide objects (nodes, operators, the
# DataScienceCluster); those rows say **ask your instructor** and give the exact command the instructor runs —
# they are not failures. The checks of *your* project (RBAC there, GPU quota, the LocalQueue and the Kueue label,
# your services) run for everyone. As the **instructor** (cluster-admin) you get every check; run this notebook
# before the workshop.

# %%
checks = preflight.run(conn, replicas=replicas, tensor=tensor, queue=cfg.queue)
checks

# %% tags=["key-chart"]
import altair as alt
import pandas as pd

from llmd_lab import viz  # sets the offline SVG renderer

alt.Chart(pd.DataFrame(checks), title="Preflight checks by status", width=360).mark_bar().encode(
    y=alt.Y("status:N", title="Status", sort=["fail", "warn", "pass"]), x=alt.X("count():Q", title="Checks (count)"),
    color=alt.Color("status:N", title="Status", scale=alt.Scale(domain=["pass", "warn", "fail"],
                                                                range=["#3e8635", "#f0ab00", "#c9190b"])))

# %% [markdown]
# ## The checks people trip over
#
# * **AuthPolicy API version.** KServe in OpenShift AI 3.0 looks for the `AuthPolicy` CRD at
#   `kuadrant.io/v1`, which Red Hat Connectivity Link provides. While it is missing, KServe deletes the service's
#   HTTPRoute, reports `HTTPRoutesReady=False` ("AuthPolicy CRD is not available, please install Red Hat
#   Connectivity Link") and never creates the endpoint picker, so the service never becomes Ready; after
#   installing it, restart the KServe controller (source: red-hat-data-services/kserve@rhoai-3.0
#   `pkg/controller/llmisvc/router_validation_ocp.go`). A community Kuadrant that serves only an older
#   `v1beta2` AuthPolicy does not count.
# * **InferencePool API group.** This release of KServe creates `inference.networking.x-k8s.io/v1alpha2`
#   pools; a cluster with only the newer `inference.networking.k8s.io` group is not enough.
# * **Free GPUs, not total GPUs.** Another team's model may already hold them; the check counts what pods
#   request right now.
# * **The Gateway.** `openshift-ai-inference` in `openshift-ingress` must be *Programmed* and have an address,
#   otherwise `status.url` stays empty.

# %%
summary = checks.groupby("status").size().to_dict()
print("summary:", summary)
failed = checks.failed()
failed[["check", "evidence", "fix"]] if len(failed) else print("nothing failed")

# %% [markdown]
# ## Did it work?

# %%
if not checks.ok:
    lines = [f"{r.check}: {r.evidence} → fix: {r.fix}" for r in checks.failed().itertuples()]
    raise AssertionError("Notebook 01 check FAILED — fix these before deploying (Hint: the fix column says how):\n- "
                         + "\n- ".join(lines))
asks = checks[checks["status"] == preflight.ASK]
print(f"✅ 01 passed: {len(checks)} checks as {'the instructor' if conn.is_cluster_admin else 'an attendee'}, "
      f"none failed ({summary}); {len(asks)} to ask your instructor about.")

from llmd_lab.course import progress

progress.record(conn, "01-preflight")  # for the instructor's class view (`llmd-lab class`)
