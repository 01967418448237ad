# %% [markdown]
# # 02 · Deploy replicas and talk to them
#
# **Goal:** deploy a model as several independent vLLM replicas behind llm-d, send it requests, and see which
# pod answered each one and how long the first token took.
#
# **Time:** 15 minutes (model download on a real cluster: up to 10 more) · **Needs:** notebook 01 green,
# `replicas` free GPUs.
#
# **What this notebook does:**
#
# 1. Builds the `LLMInferenceService` (with the OpenShift AI 3.0 workarounds) and shows its YAML.
# 2. Applies it and waits until it is Ready, showing the pods and objects KServe made from it.
# 3. Sends `requests` requests through the gateway and charts, per request, which pod answered and its time to
#    first token.
# 4. Ends with a check: the service is Ready, every request succeeded, and more than one pod answered.
#
# **Instructor talking points:**
#
# * One object in, many objects out: show `oc get deploy,svc,inferencepool,httproute -l
#   app.kubernetes.io/name=<name>`.
# * Replicas are *independent*: each has its own KV cache. That is the whole reason routing matters.
# * TTFT is what users feel in a chat UI; the rest of the answer streams at the inter-token rate.
# * The workarounds in the YAML are release-specific; check the release notes before copying them to 3.2+.
#
# **Chart:** Time to first token of each request over time, coloured by the pod that answered.
#
# *Replicas mode* (`replicas: N`, `tensor: 1`) runs N full copies of the model, one GPU each. It is the shape for
# models that fit on one GPU and for chat traffic that reuses context — the shape the rest of the workshop uses.

# %% tags=["parameters"]
namespace = "private-ai"
name = "qwen"  # LLMInferenceService name; later notebooks find the service by it
model = "Qwen/Qwen3-0.6B"  # any Hugging Face id the cluster can pull (the lab simulates a known list)
replicas = 2
gpu = "g6.4xlarge"  # GPU node type: sets the node selector, GPU toleration and pod resources
max_model_len = 8192  # longest prompt + answer vLLM accepts; bounds the KV cache one request may need
requests = 24  # requests to send
max_tokens = 32
ready_timeout_s = 900  # a real cluster downloads the model first
fast = False
seed = 0

# %%
import pandas as pd

from llmd_lab import connect, deploy, manifests, traffic, viz

if fast:
    requests, ready_timeout_s = min(requests, 12), min(ready_timeout_s, 180)
conn = connect(namespace=namespace)
print(conn.summary())

# %% [markdown]
# ## Build the LLMInferenceService
#
# The builder writes the YAML you would otherwise copy from the docs. Read it before applying it: the comments
# mark the two OpenShift AI 3.0 workarounds it adds, and why.
#
# * `spec.replicas` and `spec.parallelism.tensor` choose the layout;
# * `spec.template` is the vLLM pod: GPU request, node selector and toleration for the GPU node type;
# * `spec.router` asks KServe for a Gateway route and an endpoint picker (EPP) with the default scoring;
# * `--max-model-len` caps prompt + answer per request. vLLM refuses to start if one request of the model's
#   full context (128k tokens for Llama 3.1) would not fit in the KV cache left after the weights — on a 24 GB
#   L4 an 8B model has room for about 37k tokens, so we ask for less.
#
# The label `llmd-lab/workshop` marks everything the workshop creates, so notebook 10 deletes only that.

# %%
svc = manifests.llm_inference_service(
    name, f"hf://{model}", replicas=replicas, gpu=gpu, max_model_len=max_model_len,
    vllm_args=("--disable-uvicorn-access-log", "--enable-prompt-tokens-details"),
    labels={"llmd-lab/workshop": "true"},
)
print(manifests.to_yaml(svc))

# %% [markdown]
# ## Apply it and watch it become Ready
#
# `apply` validates first (does the model fit the GPU? are there enough GPUs per node?), then does a
# server-side apply — the same as `oc apply --server-side`, so running this cell again changes nothing.
# `wait_ready` watches the conditions: the main workload, the router (EPP and route) and finally `Ready`. If the
# deadline passes, it explains what is wrong instead of just timing out.

# %%
deploy.apply(conn, svc)
obj = deploy.wait_ready(conn, name, timeout_s=ready_timeout_s)
ep = deploy.endpoints(conn, name)
print("status.url (through llm-d):      ", ep.gateway)
print("workload Service (round-robin):  ", ep.service)
print("served model name:               ", ep.model)

# %% [markdown]
# Where did the replicas land? One row per pod: the model's replicas (`role` both) and the endpoint picker
# (`scheduler`), with the node each runs on and the GPUs it holds — the same as `oc get pods -o wide`.

# %%
deploy.pods_frame(conn, name)

# %% [markdown]
# ## Talk to it
#
# The traffic helper streams each answer and records, per request, the **time to first token** (TTFT: queueing
# plus *prefill*, the pass over your prompt) and the pod that answered (vLLM names itself in a response header).
# We send prompts that share nothing, so the endpoint picker has no cache to exploit and simply balances load.

# %%
target = traffic.Target(ep.gateway, ep.model, name="llm-d")
wl = traffic.random_prompts(requests, prompt_tokens=256, max_tokens=max_tokens, seed=seed)
df = traffic.run(target, wl, concurrency=4, seed=seed)
df[["turn", "pod", "ttft_s", "e2e_s", "prompt_tokens", "output_tokens", "ok"]].head(10)

# %%
print(traffic.summary(df).round(3).T)
traffic.requests_per_pod(df)

# %% [markdown]
# Each dot is a request; its colour is the pod that served it. With unique prompts the picker spreads the work,
# and TTFT mostly reflects prompt length and how busy the chosen pod was.

# %% tags=["key-chart"]
viz.timeline(df)

# %% [markdown]
# ## Did it work?

# %%
problems = []
if not deploy.is_ready(deploy.get(conn, name)):
    problems.append(f"{name} is not Ready. Hint: print(deploy.explain(conn, {name!r})).")
bad = df[~df["ok"]]
if len(bad):
    problems.append(f"{len(bad)} of {len(df)} requests failed, e.g. {bad['error'].iloc[0]}. "
                    "Hint: is the model name right (404) or the gateway returning 500 (see notebook 08)?")
if df["ttft_s"].isna().all():
    problems.append("no request produced a first token. Hint: check the endpoint URL and streaming.")
if problems:
    raise AssertionError("Notebook 02 check FAILED:\n- " + "\n- ".join(problems))
print(f"✅ 02 passed: {name} Ready with {replicas} replicas; {len(df)} requests answered by "
      f"{df['pod'].nunique()} pod(s), TTFT p50 {df['ttft_s'].median() * 1000:.0f} ms.")

from llmd_lab.course import progress

progress.record(conn, "02-deploy-replicas")  # for the instructor's class view (`llmd-lab class`)
