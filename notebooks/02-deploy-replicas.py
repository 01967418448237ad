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
# * Which pod answered is not in any response header on a cluster (vLLM sends none; the gateway adds none): the
#   pods' `vllm:request_success_total` counters are the evidence, as Prometheus would show them.
# * Replicas are *independent*: each has its own KV cache. That is the whole reason routing matters.
# * TTFT is what users feel in a chat UI; the rest of the answer streams at the inter-token rate.
# * The workarounds in the YAML are release-specific; check the release notes before copying them to 3.2+.
#
# **Chart:** Time to first token of each request over time, coloured by the pod that answered.
#
# *Replicas mode* (`replicas: N`, `tensor: 1`) runs N full copies of the model, one GPU each. It is the shape for
# models that fit on one GPU and for chat traffic that reuses context — the shape the rest of the workshop uses.

# %% tags=["parameters"]
namespace = None  # your project; None: your saved settings (notebook 00), else your workbench / `oc login` project
queue = None  # Kueue LocalQueue for your services; None: saved settings, else your project's only LocalQueue
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
from pathlib import Path

import pandas as pd

from llmd_lab import connect, deploy, doctor, manifests, metrics, settings, traffic, viz

if fast:
    requests, ready_timeout_s = min(requests, 12), min(ready_timeout_s, 180)
cfg = settings.load(namespace=namespace, queue=queue)  # set once in notebook 00; parameters override
conn = connect(namespace=cfg.namespace)
cfg = settings.discover(conn, cfg)
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
    name, f"hf://{model}", queue=cfg.queue, replicas=replicas, gpu=gpu, max_model_len=max_model_len,
    vllm_args=("--disable-uvicorn-access-log", "--enable-prompt-tokens-details"),
    labels={"llmd-lab/workshop": "true"},
)
manifest = Path(f"{name}.yaml")
if not manifest.exists():  # your edits survive a re-run: delete the file to start from the builder again
    manifest.write_text(manifests.to_yaml(svc))
print(manifest.read_text())

# %% [markdown]
# ## Your turn: edit the YAML and apply it yourself
#
# The cell above wrote the manifest to a file next to this notebook. Open it (File Browser → the `.yaml` file),
# change something harmless — `spec.replicas`, or add a label under `metadata.labels` — save, and apply it the
# way you will at work. `oc apply -f` sends the file as it is; the lab provides the same `oc` command your
# workbench has. Running the cell again with an unchanged file changes nothing (`unchanged`).

# %%
# !oc apply -f {manifest} -n {conn.namespace}

# %% [markdown]
# ## Watch it become Ready
#
# `wait_ready` watches the conditions: the main workload, the router (EPP and route) and finally `Ready`. If the
# deadline passes, it explains what is wrong instead of just timing out. The same conditions are on the object
# for `oc` to show.

# %%
obj = deploy.wait_ready(conn, name, timeout_s=ready_timeout_s)
ep = deploy.endpoints(conn, name)
print("status.url (through llm-d):      ", ep.gateway)
print("workload Service (round-robin):  ", ep.service)
print("served model name:               ", ep.model)

# %%
# !oc get llminferenceservice {name} -n {conn.namespace}
# !oc get llminferenceservice {name} -n {conn.namespace} -o jsonpath='{{.status.url}}{{"\n"}}'

# %% [markdown]
# Where did the replicas land? One row per pod: the model's replicas (`role` both) and the endpoint picker
# (`scheduler`), with the node each runs on and the GPUs it holds — the same as `oc get pods -o wide`, which
# follows. `oc describe` shows one pod's events and `oc logs` its vLLM start-up.

# %%
deploy.pods_frame(conn, name)

# %%
selector = doctor.workload_selector(name)
# !oc get pods -n {conn.namespace} -l {selector} -o wide
first_pod = deploy.pods_frame(conn, name).query("role != 'scheduler'")["pod"].iloc[0]
# !oc describe pod {first_pod} -n {conn.namespace} | tail -n 8
# !oc logs {first_pod} -n {conn.namespace} --tail=5

# %% [markdown]
# The model answers the OpenAI API. Ask it which models it serves, the way any client would — `curl` is in the
# workbench image too. (`cfg.curl_tls` is the TLS choice from your settings: the CA file, or a deliberate `-k`
# for KServe's self-signed certificate.)

# %%
tls = cfg.curl_tls
# !curl -sS {tls} {ep.gateway}/v1/models

# %% [markdown]
# ## Talk to it
#
# The traffic helper streams each answer and records, per request, the **time to first token** (TTFT: queueing
# plus *prefill*, the pass over your prompt). Which pod answered is *not* in the response: vLLM names itself in
# no header and the gateway adds none. What the cluster does provide is each pod's own counters
# (`vllm:request_success_total` on its `/metrics`), so we read every pod before and after and count the requests
# each one served. We send prompts that share nothing, so the endpoint picker has no cache to exploit and simply
# balances load.

# %%
target = traffic.Target(ep.gateway, ep.model, name="llm-d", **cfg.tls)
source = metrics.PodProxySource(conn.core, conn.namespace, doctor.workload_selector(name))
wl = traffic.random_prompts(requests, prompt_tokens=256, max_tokens=max_tokens, seed=seed)
before = metrics.scrape(source)
df = traffic.run(target, wl, concurrency=4, seed=seed)
per_pod = metrics.deltas(before, metrics.scrape(source))
df[["turn", "ttft_s", "e2e_s", "prompt_tokens", "output_tokens", "ok"]].head(10)

# %%
print(traffic.summary(df).round(3).T)
per_pod[["pod", "requests", "prompt_tokens", "ttft_p50_s"]]

# %% [markdown]
# Each bar is a pod and its length the requests it served, read from the pod's own counter. With unique prompts
# the picker spreads the work, and TTFT mostly reflects prompt length and how busy the chosen pod was.

# %% tags=["key-chart"]
import altair as alt

alt.Chart(per_pod, title="Requests served per pod (vLLM's own counter)", width=380).mark_bar().encode(
    x=alt.X("requests:Q", title="requests"), y=alt.Y("pod:N", title=None, axis=alt.Axis(labelLimit=300)),
    color=alt.Color("pod:N", legend=None))

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
served = int((per_pod["requests"].fillna(0) > 0).sum())
if per_pod["requests"].fillna(0).sum() < df["ok"].sum():
    problems.append("the pods' counters saw fewer requests than were answered. Hint: did the scrape reach every pod?")
if problems:
    raise AssertionError("Notebook 02 check FAILED:\n- " + "\n- ".join(problems))
print(f"✅ 02 passed: {name} Ready with {replicas} replicas; {len(df)} requests answered by "
      f"{served} pod(s), TTFT p50 {df['ttft_s'].median() * 1000:.0f} ms.")

from llmd_lab.course import progress

progress.record(conn, "02-deploy-replicas")  # for the instructor's class view (`llmd-lab class`)
