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
# * The threshold is the difference between "P/D for everything" (RHOAI 3.0's default, threshold 0) and "P/D for
#   the requests that need it"; notebook 09 shows how the endpoint picker's configuration is written.
#
# **Chart:** Prefill/decode against replicas on the same traffic: time to first token (p50) of short and long
# prompts, and inter-token latency (p95) of long prompts.
#
# Every request has two phases. **Prefill** reads the whole prompt in one big, compute-bound pass and produces
# the first token. **Decode** then produces one token at a time, a memory-bound loop. On one GPU they interfere:
# a long prompt arriving mid-stream stalls every other conversation's next token. *Disaggregation* runs prefill
# on dedicated pods, ships the KV cache to a decode pod over the network (NIXL), and lets decode pods only
# decode. The endpoint picker decides per request whether to use a prefill pod.

# %% tags=["parameters"]
namespace = None  # your project; None: your saved settings (notebook 00), else your workbench / `oc login` project
queue = None  # Kueue LocalQueue for your services; None: saved settings, else your project's only LocalQueue
name = "qwen"  # the baseline (replicas) service from notebook 02
pd_name = "qwen-pd"  # the disaggregated service this notebook creates (and deletes)
model = "Qwen/Qwen3-0.6B"
replicas = 2  # baseline replicas
decode_replicas = 1
prefill_replicas = 1
gpu = "g6.4xlarge"
max_model_len = 8192  # longest prompt + answer vLLM accepts (a model's native length may not fit one L4)
pd_gpu = None  # node type of the P/D pods; None: `gpu`. Set another (e.g. "g6.12xlarge") when the baseline fills `gpu`
requests = 16  # per prompt length, in the mixed load
prompt_lengths = [64, 2048]  # short vs long prompts (tokens)
pd_threshold = 1024  # the EPP sends a request to a prefill pod only if ≥ this many prompt bytes are uncached
ready_timeout_s = 900
cleanup = True
fast = False
seed = 0

# %%
import itertools

import altair as alt
import pandas as pd
from IPython.display import display

from llmd_lab import connect, deploy, doctor, manifests, metrics, settings, traffic, viz

if fast:
    requests, ready_timeout_s = min(requests, 8), min(ready_timeout_s, 180)
cfg = settings.load(namespace=namespace, queue=queue)  # set once in notebook 00; parameters override
conn = connect(namespace=cfg.namespace)
cfg = settings.discover(conn, cfg)
# P/D runs a second service next to the baseline: on a shared cluster only with your opt-in and quota for both.
settings.require_opt_in(conn, cfg, "Notebook 07 (a second, disaggregated service)",
                        need_gpus=replicas + decode_replicas + prefill_replicas)
label = {"llmd-lab/workshop": "true"}
if deploy.get(conn, name) is None:
    deploy.apply(conn, manifests.llm_inference_service(
        name, f"hf://{model}", queue=cfg.queue, replicas=replicas, gpu=gpu, labels=label, max_model_len=max_model_len,
        vllm_args=("--disable-uvicorn-access-log", "--enable-prompt-tokens-details")))

# %% [markdown]
# ## The disaggregated service
#
# A `prefill` section gives the prefill pods their own replicas and parallelism; both sides get the
# `NixlConnector` setting that moves KV blocks between them (`--kv-transfer-config`, and the pod IP as
# `VLLM_NIXL_SIDE_CHANNEL_HOST`), and the endpoint picker gets a prefill profile and a decode profile.
#
# The endpoint picker's configuration matters here. KServe's default P/D configuration in RHOAI 3.0 sets the
# `pd-profile-handler` **threshold to 0** and leaves the prefix scorer out of both profiles, so *every* request,
# however short, takes the prefill hop. We give it a threshold instead: the handler runs the prefill profile only
# when the part of the prompt the decode pod has not cached is at least `pd_threshold` bytes
# (`(1 − hit%) × len(prompt) ≥ threshold`), which needs the prefix-cache scorer in the decode profile. (Sources:
# llm-d-inference-scheduler v0.3.1 `pkg/plugins/profile/pd_profile_handler.go`; KServe's P/D default in
# red-hat-data-services/kserve@rhoai-3.0 `config/llmisvc/config-llm-scheduler.yaml`.)

# %%
pd_config = manifests.scheduler_config(pd_threshold=pd_threshold)  # prefix 2 / load 1 in both profiles
pd_svc = manifests.llm_inference_service(
    pd_name, f"hf://{model}", queue=cfg.queue, replicas=decode_replicas, gpu=pd_gpu or gpu, labels=label,
    max_model_len=max_model_len,
    prefill=manifests.Prefill(replicas=prefill_replicas), scheduler=pd_config)
print(manifests.to_yaml(pd_svc))
deploy.apply(conn, pd_svc)
for svc_name in (name, pd_name):
    deploy.wait_ready(conn, svc_name, timeout_s=ready_timeout_s, progress=not fast)

# %% [markdown]
# ## Predict
#
# P/D is meant to help **inter-token latency (ITL) of long prompts under mixed load**: with replicas, every pod
# interleaves other requests' long prefills with its decode steps, so tokens stall; with P/D the decode pod never
# runs a long prefill. Before measuring, decide which way each number moves with P/D compared with the replicas
# baseline: TTFT of short prompts, TTFT of long prompts, ITL p95 of long prompts. Write it down.

# %%
my_prediction = {"short TTFT": None, "long TTFT": None, "long ITL p95": None}  # ← "up", "down" or "same"

# %% [markdown]
# ## Measure both layouts under the same mixed load
#
# Short and long prompts arrive interleaved, several at a time, each streaming an answer: a chat service with
# some document-sized requests. Each request is tagged `short` or `long`.

# %%
def mixed_load(seed):
    short_n, long_n = prompt_lengths
    short = traffic.random_prompts(requests, prompt_tokens=short_n, max_tokens=128, seed=seed)
    long = traffic.random_prompts(requests, prompt_tokens=long_n, max_tokens=128, seed=seed + 1)
    for kind, wl in (("short", short), ("long", long)):
        for sess in wl.sessions:
            sess.tags["kind"] = kind
    sessions = [x for pair in itertools.zip_longest(long.sessions, short.sessions) for x in pair if x is not None]
    return traffic.Workload("mixed", sessions, f"{requests} short + {requests} long prompts, interleaved")

prefill_src = metrics.PodProxySource(conn.core, conn.namespace, doctor.role_selector(pd_name, "prefill"))
runs = []
for i, (svc_name, mode) in enumerate(((name, "replicas"), (pd_name, "P/D"))):
    ep = deploy.endpoints(conn, svc_name)
    before_prefill = metrics.scrape(prefill_src)
    part = traffic.run(traffic.Target(ep.gateway, ep.model, name=mode, **cfg.tls), mixed_load(seed + 10 * i),
                       concurrency=6, seed=seed, label=mode, progress=not fast)
    runs.append(part.assign(layout=mode))
    if mode == "P/D":
        prefill_work = metrics.deltas(before_prefill, metrics.scrape(prefill_src))
df = pd.concat(runs, ignore_index=True)

def view(frame):
    ok = frame[frame["ok"]]
    return pd.Series({"requests": len(frame), "errors": int((~frame["ok"]).sum()),
                      "ttft_p50_ms": ok["ttft_s"].quantile(0.5) * 1000,
                      "itl_p95_ms": ok["itl_mean_s"].dropna().quantile(0.95) * 1000})

table = df.groupby(["layout", "kind"]).apply(view, include_groups=False)
table.round(1)

# %% [markdown]
# ## Score your prediction
#
# A change within ±5 % counts as "same".

# %%
def direction(before, after):
    change = (after - before) / before if before else 0.0
    return "same" if abs(change) <= 0.05 else ("up" if change > 0 else "down")

measured = {
    "short TTFT": direction(table.loc[("replicas", "short"), "ttft_p50_ms"], table.loc[("P/D", "short"), "ttft_p50_ms"]),
    "long TTFT": direction(table.loc[("replicas", "long"), "ttft_p50_ms"], table.loc[("P/D", "long"), "ttft_p50_ms"]),
    "long ITL p95": direction(table.loc[("replicas", "long"), "itl_p95_ms"], table.loc[("P/D", "long"), "itl_p95_ms"]),
}
score = sum(my_prediction.get(k) == v for k, v in measured.items())
print(pd.DataFrame({"you predicted": my_prediction, "measured": measured}))
print(f"score: {score}/{len(measured)}" + ("  (fill in my_prediction above and re-run)" if not any(my_prediction.values()) else ""))

# %% tags=["key-chart"]
trade = table.reset_index()  # the trade at a glance: what the first token costs (left), what streaming gets (right)
ttft_chart = alt.Chart(trade, title="First token: TTFT p50", width=220).mark_bar().encode(
    x=alt.X("kind:N", title="prompt length"), xOffset="layout:N", y=alt.Y("ttft_p50_ms:Q", title="TTFT p50 (ms)"),
    color=alt.Color("layout:N", title="layout"))
itl_chart = alt.Chart(trade[trade["kind"] == "long"], title="Streaming: ITL p95, long prompts", width=160).mark_bar(
    ).encode(x=alt.X("layout:N", title=None), y=alt.Y("itl_p95_ms:Q", title="inter-token latency p95 (ms)"),
             color=alt.Color("layout:N", title="layout"))
(ttft_chart | itl_chart).properties(title="Prefill/decode against replicas, same traffic")

# %% [markdown]
# What did *this* run show? The next cell says it in words, because a small run can go either way.

# %%
itl_change = 100 * (table.loc[("P/D", "long"), "itl_p95_ms"] / table.loc[("replicas", "long"), "itl_p95_ms"] - 1)
if itl_change < -5:
    print(f"P/D cut the long prompts' ITL p95 by {-itl_change:.0f} %: its decode pod was spared the long prefills.")
else:
    print(f"P/D did not cut the long prompts' ITL p95 in this run ({itl_change:+.0f} %). Its {decode_replicas} decode "
          f"pod(s) streamed every answer, where the replicas layout spread them over {replicas} pods, and "
          f"{requests} long prompts stalled the replicas' decoding too little to matter. More long prompts arriving "
          "while others stream (more `requests`) is where the trade turns.")

# %% [markdown]
# ## Reading the result
#
# * For **short prompts**, the threshold keeps them off the prefill pods: they go straight to the decode pod, so
#   the P/D hop costs them nothing but they queue with fewer decode pods than the replicas layout has.
# * For **long prompts**, a dedicated prefill pod computes the long pass, then the KV cache travels to the decode
#   pod: TTFT pays for the transfer.
# * **ITL** is what P/D is for: the decode pod never stops for someone else's long prefill, so streaming is
#   steadier, when enough long prompts arrive while others stream; at low load there is nothing to protect
#   (the line above says which case this run was).
#
# This is the fourth case of *when routing does not help*: P/D trades TTFT for ITL. It pays off for long prompts
# with long answers at scale, and it needs fast networking between pods (RDMA/RoCE on a real cluster).

# %%
long_requests = int((df["layout"].eq("P/D") & df["kind"].eq("long")).sum())
print(f"prefill pods processed {prefill_work['prompt_tokens'].fillna(0).sum():.0f} prompt tokens "
      f"in {prefill_work['requests'].fillna(0).sum():.0f} requests (long prompts sent to P/D: {long_requests})")
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
if prefill_work["requests"].fillna(0).sum() > long_requests:
    problems.append(f"the prefill pods served {prefill_work['requests'].sum():.0f} requests but only {long_requests} "
                    f"were long: short prompts should skip prefill below pd_threshold={pd_threshold}. Hint: is the "
                    "prefix-cache scorer in the decode profile?")
if cleanup:
    deploy.delete(conn, pd_name)
if problems:
    raise AssertionError("Notebook 07 check FAILED:\n- " + "\n- ".join(problems))
print("✅ 07 passed: " + "; ".join(f"{layout} {kind}: TTFT p50 {v.ttft_p50_ms:.0f} ms, ITL p95 {v.itl_p95_ms:.1f} ms"
                                   for (layout, kind), v in table.iterrows()) + f"; prediction score {score}/3.")

from llmd_lab.course import progress

progress.record(conn, "07-pd-disaggregation")  # for the instructor's class view (`llmd-lab class`)
