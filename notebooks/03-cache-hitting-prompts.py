# %% [markdown]
# # 03 · Cache-hitting prompts: predict, then measure
#
# **Goal:** write prompts that reuse the KV cache, *predict* the hit rate and time to first token from a
# two-line model, then measure them and see how far off you were.
#
# **Time:** 20 minutes · **Needs:** the service from notebook 02 (this notebook creates it if it is missing).
#
# **What this notebook does:**
#
# 1. Calibrates the cost of a prefill token from a few cold requests.
# 2. Predicts, then measures, the hit rate of an exact repeated prompt.
# 3. Predicts, then measures, a shared system prompt with different questions.
# 4. Predicts, then measures, multi-turn conversations that resend their history.
# 5. Charts predicted against measured hit rate and the TTFT of each pattern; ends with a check that each
#    prediction was close.
#
# **Instructor talking points:**
#
# * The cache works in blocks of 16 tokens, chained: one different token early in the prompt and nothing after
#   it is reused.
# * Put what is shared first (system prompt, documents) and what varies last (the question).
# * Predict before you measure: the formula is two lines, and where it is wrong is the lesson.
#
# **Chart:** Predicted against measured prefix-cache hit rate per prompt pattern, and the time to first token
# of each pattern.
#
# ## How the prefix cache works
#
# vLLM stores the attention state of a prompt in fixed-size **blocks** of tokens (16 by default). Each full
# block is identified by a hash of its tokens *chained with the hash of the block before it*. So a block can be
# reused only when everything before it is identical too. A request whose first blocks are already in the cache
# skips their prefill: less compute, an earlier first token. vLLM counts prompt tokens looked up
# (`vllm:prefix_cache_queries_total`) and found (`vllm:prefix_cache_hits_total`); hits ÷ queries is the hit rate.

# %% tags=["parameters"]
namespace = None  # your project; None: your saved settings (notebook 00), else your workbench / `oc login` project
queue = None  # Kueue LocalQueue for your services; None: saved settings, else your project's only LocalQueue
name = "qwen"
model = "Qwen/Qwen3-0.6B"
replicas = 2
gpu = "g6.4xlarge"
max_model_len = 8192
requests = 16  # requests per pattern
prompt_tokens = 1024  # length of the repeated prompt
system_tokens = 1500  # length of the shared system prompt
conversations = 4  # multi-turn pattern: conversations × turns
turns = 4
block_size = 16  # vLLM's --block-size (the default)
export_dir = "../antora/modules/ROOT/images"  # where the course site picks up the chart ("" to skip)
try_precise = False  # also deploy "<name>-precise" with the precise prefix scorer (needs 2 more GPUs)
ready_timeout_s = 900
fast = False
seed = 0

# %%
from pathlib import Path

import numpy as np
import pandas as pd
from IPython.display import display

from llmd_lab import connect, deploy, doctor, manifests, metrics, settings, traffic, viz

if fast:
    requests, prompt_tokens, system_tokens = min(requests, 8), min(prompt_tokens, 512), min(system_tokens, 600)
    conversations, turns, ready_timeout_s = min(conversations, 3), min(turns, 3), min(ready_timeout_s, 180)
cfg = settings.load(namespace=namespace, queue=queue)  # set once in notebook 00; parameters override
conn = connect(namespace=cfg.namespace)
cfg = settings.discover(conn, cfg)

# The service from notebook 02: reuse it if it exists, create it the same way if not.
if deploy.get(conn, name) is None:
    deploy.apply(conn, manifests.llm_inference_service(
        name, f"hf://{model}", queue=cfg.queue, replicas=replicas, gpu=gpu, labels={"llmd-lab/workshop": "true"},
        max_model_len=max_model_len, vllm_args=("--disable-uvicorn-access-log", "--enable-prompt-tokens-details")))
deploy.wait_ready(conn, name, timeout_s=ready_timeout_s, progress=not fast)
ep = deploy.endpoints(conn, name)
target = traffic.Target(ep.gateway, ep.model, name="llm-d", **cfg.tls)
source = metrics.PodProxySource(conn.core, conn.namespace, doctor.workload_selector(name))
print("sending to", ep.gateway, "model", ep.model)

# %% [markdown]
# The endpoint picker is a pod of its own, next to the vLLM pods. Look at it the way you would at work: its pod,
# its configuration (the scorers and their weights are in the `--config-text` argument KServe gives it), and the
# models the gateway serves behind it.

# %%
epp = doctor.scheduler_selector(name)
tls = cfg.curl_tls
# !oc get pods -n {conn.namespace} -l {epp}
# !oc get deploy {name}-kserve-router-scheduler -n {conn.namespace} -o jsonpath='{{.spec.template.spec.containers[0].args}}' | tr ',' '\n' | grep -A1 -i config | head -n 20
# !curl -sS {tls} {ep.gateway}/v1/models

# %% [markdown]
# A small helper: read every vLLM pod's counters, send a workload, read them again, and keep the difference.
# Measuring on the server (not in the client) is what you would do on a real cluster too.

# %%
def measure(workload, concurrency=1):
    before = metrics.scrape(source)
    df = traffic.run(target, workload, concurrency=concurrency, seed=seed, progress=not fast)
    per_pod = metrics.deltas(before, metrics.scrape(source))
    queries, hits = per_pod["prefix_cache_queries"].sum(), per_pod["prefix_cache_hits"].sum()
    return df, per_pod, (hits / queries if queries else float("nan"))

# %% [markdown]
# ## Step 1 — calibrate: what does a token of prefill cost?
#
# Our model of TTFT has two numbers: a fixed overhead and a prefill cost per *uncached* prompt token.
# We measure both from cold prompts of two lengths (unique text, so nothing is cached), one at a time.

# %%
cold = pd.concat([
    measure(traffic.random_prompts(4, prompt_tokens=n, max_tokens=8, seed=seed + n))[0] for n in (128, 1024)
], ignore_index=True)
per_token_s, overhead_s = np.polyfit(cold["prompt_tokens"], cold["ttft_s"], 1)
print(f"TTFT ≈ {overhead_s * 1000:.1f} ms + {per_token_s * 1e6:.1f} µs × uncached prompt tokens")
if per_token_s <= 0:
    print("Prefill is below the noise here (a fast lab time scale, or a very fast GPU): the TTFT half of the model "
          "has nothing to predict with, so only the hit-rate predictions are meaningful in this run.")
    per_token_s = 0.0

def predict_ttft(prompt, cached):
    return overhead_s + (prompt - cached) * per_token_s

def full_blocks(tokens):
    return (tokens // block_size) * block_size

# %% [markdown]
# ## Step 2 — the exact repeat
#
# Send the same prompt `requests` times. **Predict first.** The first request finds nothing; every later one
# finds all its *full* blocks. Write your guess of the hit rate below (a number between 0 and 1), or leave
# `None` to use the formula
#
# hit rate ≈ (n − 1)/n × full_blocks(P)/P.

# %%
my_guess_repeat = None  # ← your prediction, e.g. 0.9

# %%
formula_repeat = (requests - 1) / requests * full_blocks(prompt_tokens) / prompt_tokens
predicted_repeat = my_guess_repeat if my_guess_repeat is not None else formula_repeat
df_repeat, pods_repeat, hit_repeat = measure(traffic.repeated_prompt(requests, prompt_tokens=prompt_tokens,
                                                                     max_tokens=16, seed=seed))
warm = df_repeat.iloc[1:]
ttft_pred = predict_ttft(warm["prompt_tokens"].mean(), full_blocks(int(warm["prompt_tokens"].mean())))
print(f"hit rate: predicted {predicted_repeat:.2f}, measured {hit_repeat:.2f}, error {hit_repeat - predicted_repeat:+.2f}")
ttft_meas = warm["ttft_s"].median()
print(f"warm TTFT: predicted {ttft_pred * 1000:.1f} ms, measured median {ttft_meas * 1000:.1f} ms, "
      f"error {(ttft_meas - ttft_pred) / ttft_pred:+.0%}")
print("pods used:", df_repeat["pod"].value_counts().to_dict())

# %% [markdown]
# The measured hit rate is a little below the formula: the chat template adds a few tokens, and the last,
# partly filled block is always recomputed. If it is *far* below, look at the pods used: a repeat that lands on a
# second replica starts cold there.

# %% [markdown]
# ## Step 3 — a shared system prompt
#
# Many users, one long instruction block of S tokens, then each user's short question of Q tokens. Only the
# shared part can hit: hit rate ≈ (n − 1)/n × full_blocks(S)/(S + Q). Guess first.

# %%
my_guess_system = None  # ← your prediction

# %%
question_tokens = 40
formula_system = (requests - 1) / requests * full_blocks(system_tokens) / (system_tokens + question_tokens)
predicted_system = my_guess_system if my_guess_system is not None else formula_system
df_system, pods_system, hit_system = measure(traffic.shared_system_prompt(
    requests, system_tokens=system_tokens, question_tokens=question_tokens, max_tokens=16, seed=seed))
print(f"hit rate: predicted {predicted_system:.2f}, measured {hit_system:.2f}, error {hit_system - predicted_system:+.2f}")

# %% [markdown]
# ## Step 4 — multi-turn conversations
#
# Each turn resends the whole conversation so far, so turn *k* can reuse what turn *k − 1* sent — **if it lands on
# the same pod**. Not the previous *answer*, though: the server renders the conversation through the model's chat
# template, and Qwen3's template writes earlier answers differently from how they were generated — it drops the
# `<think>…</think>` block from history (and with thinking switched off, the generation prompt carried an empty
# `<think>\n\n</think>` that history leaves out). The tokens diverge right after the previous prompt's
# `<|im_start|>assistant` header, so the answer is recomputed. (Source: the `chat_template` in
# Qwen/Qwen3-0.6B's `tokenizer_config.json`.) The formula therefore adds up, turn by turn, the previous turn's
# *prompt* (in full blocks) over the new prompt. A model whose template re-renders answers verbatim would also
# reuse the answer; a simulator that does so will measure above this prediction.

# %%
my_guess_multi = None  # ← your prediction

# %%
wl_multi = traffic.multi_turn(conversations, turns, system_tokens=300, turn_tokens=60, max_tokens=32, seed=seed)
prompt_len = [300 + 60 * (t + 1) + 32 * t for t in range(turns)]  # system + questions + previous answers
cached_len = [0] + [full_blocks(prompt_len[t - 1]) for t in range(1, turns)]  # the previous prompt, not its answer
formula_multi = sum(cached_len) / sum(prompt_len)
predicted_multi = my_guess_multi if my_guess_multi is not None else formula_multi
df_multi, pods_multi, hit_multi = measure(wl_multi, concurrency=2)
print(f"hit rate: predicted {predicted_multi:.2f}, measured {hit_multi:.2f}, error {hit_multi - predicted_multi:+.2f}")

# %% [markdown]
# ## When caching does not help
#
# A prompt shorter than one block has nothing to reuse, however often you repeat it. The same is true when
# prompts differ in their *first* tokens — a timestamp or a user name at the very top breaks the hash chain.

# %%
df_short, pods_short, hit_short = measure(traffic.repeated_prompt(requests, prompt_tokens=8, max_tokens=8, seed=seed))
print(f"8-token prompt repeated {requests}×: hit rate {hit_short:.2f}")

# %% [markdown]
# ## All patterns at a glance
#
# Bars are the measured hit rate, black ticks your prediction; the right panel shows client TTFT per pattern
# (log scale).

# %% tags=["key-chart"]
results = pd.DataFrame([
    {"pattern": "repeat", "predicted": predicted_repeat, "measured": hit_repeat},
    {"pattern": "system prompt", "predicted": predicted_system, "measured": hit_system},
    {"pattern": "multi-turn", "predicted": predicted_multi, "measured": hit_multi},
    {"pattern": "short prompt", "predicted": 0.0, "measured": hit_short},
]).assign(error=lambda d: d["measured"] - d["predicted"])
hits = viz.predicted_vs_measured(results, x="pattern", predicted="predicted", measured="measured",
                                 title="Prefix-cache hit rate: predicted vs measured", y_title="hit rate (%)",
                                 percent=True)
all_requests = pd.concat([df_repeat.assign(pattern="repeat"), df_system.assign(pattern="system prompt"),
                          df_multi.assign(pattern="multi-turn"), df_short.assign(pattern="short prompt")])
chart = hits.properties(width=260) | viz.ttft_distribution(all_requests, by="pattern").properties(width=260)
if export_dir and Path(export_dir).is_dir():  # the course site shows this chart on the page for this notebook
    for suffix in ("svg", "png"):
        viz.save(chart, Path(export_dir) / f"03-hit-rate-predicted-vs-measured.{suffix}")
display(results.round(3))
chart

# %% [markdown]
# ## Approximate vs precise prefix scoring
#
# The default `prefix-cache-scorer` is *approximate*: the EPP remembers where it sent each prompt's blocks and
# assumes they are still there. The `precise-prefix-cache-scorer` instead listens to KV-cache events that
# every vLLM publishes, so it knows what is really resident — at the price of running the model's tokenizer in
# the EPP (a problem on disconnected clusters). This is the configuration it needs:

# %%
precise = manifests.scheduler_config({"precise-prefix-cache-scorer": 3, "queue-scorer": 2,
                                      "kv-cache-utilization-scorer": 2})
print(manifests.to_yaml(precise))
if try_precise:
    deploy.apply(conn, manifests.llm_inference_service(
        f"{name}-precise", f"hf://{model}", queue=cfg.queue, replicas=replicas, gpu=gpu, scheduler=precise,
        labels={"llmd-lab/workshop": "true"}))
    deploy.wait_ready(conn, f"{name}-precise", timeout_s=ready_timeout_s)
    ep_p = deploy.endpoints(conn, f"{name}-precise")
    df_p = traffic.run(traffic.Target(ep_p.gateway, ep_p.model, name="precise", **cfg.tls), wl_multi, concurrency=2)
    print(traffic.summary(pd.concat([df_multi.assign(mode="approximate"), df_p])).round(3))

# %% [markdown]
# ## Did it work?

# %%
problems = []
if not hit_repeat > 0.5:
    problems.append(f"the repeated prompt hit only {hit_repeat:.0%} of its tokens (pods: "
                    f"{df_repeat['pod'].value_counts().to_dict()}). Hint: is prefix caching on, and did the requests "
                    "go through status.url (llm-d) rather than the workload Service?")
if not hit_multi > 0.3:
    problems.append(f"multi-turn hit rate {hit_multi:.0%} is low. Hint: conversations must return to the same pod; "
                    "check requests per pod and the EPP's scorers.")
if not hit_short < 0.2:
    problems.append(f"an 8-token prompt cannot fill a {block_size}-token block, yet hit {hit_short:.0%}. "
                    "Hint: other traffic may be running against this service.")
if (~all_requests["ok"].astype(bool)).any():
    problems.append("some requests failed; see all_requests[~all_requests.ok].")
if problems:
    raise AssertionError("Notebook 03 check FAILED:\n- " + "\n- ".join(problems))
print("✅ 03 passed: " + ", ".join(f"{r.pattern} {r.measured:.0%} (error {r.error:+.2f})" for r in results.itertuples()))

from llmd_lab.course import progress

progress.record(conn, "03-cache-hitting-prompts")  # for the instructor's class view (`llmd-lab class`)
