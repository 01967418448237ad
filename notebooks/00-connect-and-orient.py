# %% [markdown]
# # 00 · Connect and orient
#
# **Goal:** know where this notebook is running, who you are on the cluster, and what llm-d adds on top of
# vLLM — before touching anything.
#
# **Time:** 10 minutes · **Needs:** an OpenShift AI 3.0 workbench, a `KUBECONFIG`, or nothing at all (the
# local lab starts by itself).
#
# **What this notebook does:**
#
# 1. Connects with `connect()` and prints where it runs, as whom, and in which project.
# 2. Draws llm-d in one picture: gateway, endpoint picker, vLLM pods.
# 3. Lists what the cluster offers: whether `LLMInferenceService` is served, and the GPU inventory per node.
# 4. Lists the services already in your project.
# 5. Ends with a check: connected, the API is served, and the project is readable.
#
# **Instructor talking points:**
#
# * vLLM is the engine, llm-d the platform: routing, disaggregation and scale-out around many engines.
# * The business question of the workshop: more capacity without buying bigger GPUs — two small GPUs cost
#   about half of one four-GPU node (USD 1.70/h vs USD 3.40/h on AWS L4 instances).
# * Everything here also runs against the local lab; numbers there are simulated, shapes are faithful.
# * Ask the room: "what would make two copies of a model answer the *same* question at different speeds?"
#
# **Chart:** GPUs per node of the cluster you are connected to, by GPU type.
#
# Every notebook in this workshop talks to Kubernetes through the same small library, `llmd_lab`. On a real
# cluster it uses your workbench's service account or your kubeconfig; on a laptop it uses the *local lab*, a
# Kubernetes-compatible API server that runs simulated GPU pods. The cells are identical in both worlds.

# %% tags=["parameters"]
namespace = "private-ai"  # your project (on a workbench: the project the workbench lives in)
name = "qwen"  # the LLMInferenceService the next notebooks create
model = "Qwen/Qwen3-0.6B"  # Hugging Face id of the model
replicas = 2  # vLLM copies notebook 02 will deploy
requests = 0  # this notebook sends no traffic
fast = False  # True in CI: shorter waits, fewer requests
seed = 0

# %% [markdown]
# ## Where am I?
#
# `connect()` tries, in order: the workbench's service account, your kubeconfig, and finally the local lab.
# The summary tells you which one it found. It never prints your token — if you ever see one in an output,
# that is a bug.

# %%
from llmd_lab import connect, k8s, manifests, preflight

conn = connect(namespace=namespace)
conn

# %% [markdown]
# ## What is llm-d, in one picture
#
# vLLM is the *engine*: one process that holds the model weights on a GPU and a **KV cache** of the attention
# state of recent prompts. llm-d is the *platform* around many such engines:
#
# * the **Gateway** receives your request at `status.url`;
# * it asks the **endpoint picker (EPP)** which vLLM pod should serve it. The EPP filters the pods, gives each a
#   score per *scorer* (prefix-cache match, queue length, KV-cache use, …), adds the weighted scores and picks
#   the best;
# * the chosen vLLM pod answers. If it already holds the start of your prompt in its KV cache, it skips that
#   part of the work and your first token arrives sooner.
#
# Next to it, a plain Kubernetes Service spreads requests over the same pods without looking at them: that is
# the *round-robin* baseline we compare against in notebook 05.
#
# ![llm-d architecture: gateway, endpoint picker, vLLM pods, and the round-robin Service](images/architecture.svg)
#
# You write one object, an `LLMInferenceService`; KServe turns it into the Deployment (or LeaderWorkerSet), the
# InferencePool, the HTTPRoute and the EPP.

# %% [markdown]
# ## What does this cluster offer?
#
# Two questions decide everything that follows: is the `LLMInferenceService` API served here, and how many GPUs
# are free? (Notebook 01 asks many more questions; this is the quick look.)

# %%
served = k8s.has_kind(conn, manifests.API_VERSION, manifests.KIND)
gpus = preflight.gpu_inventory(conn)
print(f"LLMInferenceService API ({manifests.API_VERSION}) served: {served}")
print(f"GPU nodes: {len(gpus)}, GPUs free now: {int(gpus['free'].sum()) if len(gpus) else 0}")
gpus

# %% tags=["key-chart"]
import altair as alt

from llmd_lab import viz  # sets the offline SVG renderer

by_state = gpus.melt(id_vars=["node"], value_vars=["requested", "free"], var_name="state", value_name="gpus")
alt.Chart(by_state, title="GPUs per node", width=420).mark_bar().encode(
    y=alt.Y("node:N", title="Node"), x=alt.X("sum(gpus):Q", title="GPUs (count)", axis=alt.Axis(tickMinStep=1, format="d")),
    color=alt.Color("state:N", title="GPU state"))

# %% [markdown]
# ## What is already running in my project?
#
# Re-running the workshop is safe: every notebook creates or updates its objects, never duplicates them. This
# cell just lists what is there now.

# %%
existing = k8s.list_objects(conn, manifests.API_VERSION, manifests.KIND, conn.namespace) if served else []
print(f"{len(existing)} LLMInferenceService(s) in {conn.namespace}:",
      ", ".join(o["metadata"]["name"] for o in existing) or "none")

# %% [markdown]
# ## Did it work?

# %%
problems = []
if not served:
    problems.append(f"{manifests.KIND} is not served by {conn.server}. Hint: OpenShift AI 3.0 with KServe must be "
                    "installed — run notebook 01 to see exactly what is missing.")
if served and len(gpus) == 0:
    problems.append("no GPU nodes found. Hint: scale a GPU MachineSet or ask your admin (notebook 01 shows the fix).")
if problems:
    raise AssertionError("Notebook 00 check FAILED:\n- " + "\n- ".join(problems))
print(f"✅ 00 passed: connected to {conn.kind} as {conn.user}, namespace {conn.namespace}, "
      f"{int(gpus['allocatable'].sum())} GPUs in the cluster.")

from llmd_lab.course import progress

progress.record(conn, "00-connect-and-orient")  # for the instructor's class view (`llmd-lab class`)
