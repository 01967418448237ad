# %% [markdown]
# # 07 · Prefill/decode disaggregation: a trade, not a free lunch
#
# **Goal:** split the two phases of inference onto different pods, and measure what that buys (steadier token
# streaming) and what it costs (a later first token for short prompts).
#
# **Time:** 20 minutes · **Needs:** the service from notebook 02 as the baseline (created here if missing) and
# two more free GPUs. This notebook deletes its disaggregated service at the end.
#
# **What this notebook does:**
#
# 1. Deploys a disaggregated service: prefill pods and decode pods.
# 2. Asks for your prediction: does short-prompt TTFT, long-prompt TTFT and inter-token latency go up or down?
# 3. Measures both layouts with short and long prompts.
# 4. Charts TTFT and inter-token latency side by side, and reads the trade.
# 5. Ends with a check: both services answered and the prefill pods did work; then deletes the disaggregated
#    service.
#
# **Instructor talking points:**
#
# * Prefill is compute-bound, decode memory-bound: different hardware sweet spots, which is why splitting them
#   can pay at scale.
# * The price is a KV transfer per request and more pods to run; short chat turns rarely benefit.
# * The endpoint picker's P/D profile can skip the prefill pod for short prompts (a threshold); notebook 09
#   shows how its configuration is written.
#
# **Chart:** Time to first token and inter-token latency for replicas against prefill/decode, with short and
# long prompts.
#
# Every request has two phases. **Prefill** reads the whole prompt in one big, compute-bound pass and produces
# the first token. **Decode** then produces one token at a time, a memory-bound loop. On one GPU they interfere:
# a long prompt arriving mid-stream stalls every other conversation's next token. *Disaggregation* runs prefill
# on dedicated pods, ships the KV cache to a decode pod over the network (NIXL), and lets decode pods only
# decode. The endpoint picker decides per request whether to use a prefill pod.

# %% tags=["parameters"]
namespace = "private-ai"
name = "qwen"  # the baseline (replicas) service from notebook 02
pd_name = "qwen-pd"  # the disaggregated service this notebook creates (and deletes)
model = "Qwen/Qwen3-0.6B"
replicas = 2  # baseline replicas
decode_replicas = 1
prefill_replicas = 1
gpu = "g6.4xlarge"
requests = 16  # per prompt length
prompt_lengths = [64, 2048]  # short vs long prompts
ready_timeout_s = 900
cleanup = True
fast = False
seed = 0

# %%
import pandas as pd
from IPython.display import display

from llmd_lab import connect, deploy, doctor, manifests, metrics, traffic, viz

if fast:
    requests, ready_timeout_s = min(requests, 8), min(ready_timeout_s, 180)
conn = connect(namespace=namespace)
label = {"llmd-lab/workshop": "true"}
if deploy.get(conn, name) is None:
    deploy.apply(conn, manifests.llm_inference_service(
        name, f"hf://{model}", replicas=replicas, gpu=gpu, labels=label,
        vllm_args=("--disable-uvicorn-access-log", "--enable-prompt-tokens-details")))

# %% [markdown]
# ## The disaggregated service
#
# A `prefill` section gives the prefill pods their own replicas and parallelism; both sides get the
# `NixlConnector` setting that moves KV blocks between them, and KServe configures the endpoint picker with a
# prefill profile and a decode profile.

# %%
pd_svc = manifests.llm_inference_service(
    pd_name, f"hf://{model}", replicas=decode_replicas, gpu=gpu, labels=label,
    prefill=manifests.Prefill(replicas=prefill_replicas))
print(manifests.to_yaml(pd_svc))
deploy.apply(conn, pd_svc)
for svc_name in (name, pd_name):
    deploy.wait_ready(conn, svc_name, timeout_s=ready_timeout_s, progress=not fast)

# %% [markdown]
# ## Predict
#
# Before measuring, decide which way you expect each number to move compared with the replicas baseline:
# TTFT for short prompts, TTFT for long prompts, and inter-token latency (ITL). Write it down.

# %%
my_prediction = {"short TTFT": None, "long TTFT": None, "ITL": None}  # ← "up", "down" or "same"

# %% [markdown]
# ## Measure both layouts with short and long prompts

# %%
prefill_src = metrics.PodProxySource(conn.core, conn.namespace, doctor.role_selector(pd_name, "prefill"))
runs = []
before_prefill = metrics.scrape(prefill_src)
for svc_name, mode in ((name, "replicas"), (pd_name, "P/D")):
    ep = deploy.endpoints(conn, svc_name)
    for n in prompt_lengths:
        wl = traffic.random_prompts(requests, prompt_tokens=n, max_tokens=64, seed=seed + n)
        part = traffic.run(traffic.Target(ep.gateway, ep.model, name=mode), wl, concurrency=4, seed=seed,
                           label=f"{mode} · {n} tokens", progress=not fast)
        runs.append(part.assign(layout=mode, prompt=n))
prefill_work = metrics.deltas(before_prefill, metrics.scrape(prefill_src))
df = pd.concat(runs, ignore_index=True)
table = traffic.summary(df)[["requests", "errors", "ttft_p50_ms", "ttft_p95_ms", "itl_mean_ms"]]
table.round(1)

# %% tags=["key-chart"]
viz.ttft_percentiles(df) & viz.timeline(df, y="itl_mean_s", color="mode")

# %% [markdown]
# ## Reading the result
#
# * For **short prompts**, P/D adds a hop: the prefill pod computes, then the KV cache travels to the decode pod.
#   There was little prefill to offload, so TTFT can only get worse.
# * For **long prompts**, a dedicated prefill pod keeps the long pass away from the decode loop.
# * **ITL** is what P/D is for: decode pods never stop for someone else's prefill, so streaming is steadier —
#   most visible when many long prompts arrive while others are streaming.
#
# This is the fourth case of *when routing does not help*: P/D trades TTFT for ITL. It pays off for long prompts
# with long answers at scale, and it needs fast networking between pods (RDMA/RoCE on a real cluster).

# %%
print("your prediction:", my_prediction)
print(f"prefill pods processed {prefill_work['prompt_tokens'].fillna(0).sum():.0f} prompt tokens "
      f"in {prefill_work['requests'].fillna(0).sum():.0f} requests")
display(prefill_work[["pod", "requests", "prompt_tokens"]])

# %% [markdown]
# ## Did it work?

# %%
problems = []
if not df["ok"].all():
    problems.append(f"{int((~df['ok']).sum())} requests failed: {df[~df['ok']]['error'].iloc[0]}")
if not (prefill_work["prompt_tokens"].fillna(0).sum() > 0):
    problems.append("the prefill pods processed no prompt tokens, so requests never used them. Hint: check the EPP's "
                    f"P/D profile (`oc logs -l {doctor.scheduler_selector(pd_name)}`).")
if cleanup:
    deploy.delete(conn, pd_name)
if problems:
    raise AssertionError("Notebook 07 check FAILED:\n- " + "\n- ".join(problems))
print("✅ 07 passed: " + "; ".join(f"{k}: TTFT p50 {v.ttft_p50_ms:.0f} ms, ITL {v.itl_mean_ms:.1f} ms"
                                   for k, v in table.iterrows()))

from llmd_lab.course import progress

progress.record(conn, "07-pd-disaggregation")  # for the instructor's class view (`llmd-lab class`)
