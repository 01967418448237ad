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
# 3. Lists what the cluster offers: whether `LLMInferenceService` is served, your project's GPU quota and the GPU
#    nodes (the instructor's view; as an attendee, the command to ask for).
# 4. Lists the services already in your project.
# 5. Ends with a check: connected, the API is served, and the project is readable.
#
# **Instructor talking points:**
#
# * vLLM is the engine, llm-d the platform: routing, disaggregation and scale-out around many engines.
# * The business question of the workshop: more capacity without buying bigger GPUs. Notebook 06 prices the
#   layouts from `llmd_lab/data/gpu_prices.yaml` (AWS on-demand, with source and date): quote those, for your
#   region, not remembered figures.
# * Everything here also runs against the local lab; numbers there are simulated, shapes are faithful.
# * Ask the room: "what would make two copies of a model answer the *same* question at different speeds?"
#
# **Chart:** the quick look's checks (GPU quota, GPU nodes) and their results.
#
# Every notebook in this workshop talks to Kubernetes through the same small library, `llmd_lab`. On a real
# cluster it uses your workbench's service account or your kubeconfig; on a laptop it uses the *local lab*, a
# Kubernetes-compatible API server that runs simulated GPU pods. The cells are identical in both worlds.

# %% tags=["parameters"]
namespace = None  # your project; None: your saved settings (notebook 00), else your workbench / `oc login` project
queue = None  # Kueue LocalQueue for your services; None: saved settings, else your project's only LocalQueue
name = "qwen"  # the LLMInferenceService the next notebooks create
model = "Qwen/Qwen3-0.6B"  # Hugging Face id of the model
replicas = 2  # vLLM copies notebook 02 will deploy
requests = 0  # this notebook sends no traffic
ca_file = None  # CA bundle that signs KServe's serving certificate (ask your instructor); None: system CAs
insecure_skip_verify = None  # True: accept KServe's self-signed certificate unverified (a deliberate choice)
allow_disruptive = None  # True: allow lessons that break things or take many GPUs on a shared cluster
save = True  # remember these settings for every later notebook
fast = False  # True in CI: shorter waits, fewer requests
seed = 0

# %% [markdown]
# ## Where am I?
#
# `connect()` tries, in order: your kubeconfig (what `oc login` writes in the workbench terminal, so you act as
# *yourself*), the workbench's own service account, and finally the local lab. The summary tells you which one
# it found, who the cluster thinks you are (`oc whoami`) and a short `oc auth can-i` summary: as an attendee you
# may create services in your project but not list nodes — anything cluster-wide, you ask your instructor. It
# never prints your token — if you ever see one in an output, that is a bug.

# %%
from llmd_lab import connect, k8s, manifests, preflight, settings

cfg = settings.load(namespace=namespace, queue=queue, ca_file=ca_file, insecure_skip_verify=insecure_skip_verify,
                    allow_disruptive=allow_disruptive)
conn = connect(namespace=cfg.namespace)
cfg = settings.discover(conn, cfg)
conn

# %% [markdown]
# ## Your settings, set once
#
# Your project, the Kueue queue your services use, how to trust the model endpoint's TLS certificate and an
# optional Hugging Face token differ between attendees and clusters. They are saved once here (a small YAML file
# in your home, `~/.config/llmd-lab/settings.yaml`) and every later notebook loads them; a notebook's own
# parameters still win. The token itself is never written there: set `HF_TOKEN` in the workbench's environment
# variables, or put its *path* in `hf_token_file`.

# %%
if save:
    print("saved to", settings.save(cfg))
cfg

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
# may you use? Nodes are cluster-wide objects an attendee cannot list, so the GPU question has two answers: your
# project's GPU quota (everyone) and the GPU nodes (the instructor's view; as an attendee you get the command to
# ask for). Notebook 01 asks many more questions; this is the quick look.

# %%
served = k8s.has_kind(conn, manifests.API_VERSION, manifests.KIND)
print(f"LLMInferenceService API ({manifests.API_VERSION}) served: {served}")
gpus = preflight.run(conn, replicas=replicas, checks=[preflight.check_quota, preflight.check_gpus])
gpus

# %% tags=["key-chart"]
import altair as alt

from llmd_lab import viz  # sets the offline SVG renderer

alt.Chart(gpus.assign(n=1), title="The quick look: what this cluster offers you", width=420).mark_bar().encode(
    y=alt.Y("check:N", title=None, axis=alt.Axis(labelLimit=320)),
    x=alt.X("n:Q", title="checks (count)", axis=alt.Axis(tickMinStep=1, format="d")),
    color=alt.Color("status:N", title="Result"), tooltip=["check", "status", "evidence"])

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
for row in gpus.failed().itertuples():
    problems.append(f"{row.check}: {row.evidence}. Hint: {row.fix}")
if problems:
    raise AssertionError("Notebook 00 check FAILED:\n- " + "\n- ".join(problems))
print(f"✅ 00 passed: connected to {conn.kind} as {conn.user}, namespace {conn.namespace}; "
      f"GPUs: {'; '.join(gpus['evidence'])}.")

from llmd_lab.course import progress

progress.record(conn, "00-connect-and-orient")  # for the instructor's class view (`llmd-lab class`)
