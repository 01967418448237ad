"""How many GPUs and how much time the workshop needs, computed from the notebooks' own parameters.

Each notebook's ``parameters`` cell is read (the values papermill would override), and :data:`DEMAND` says which
services the notebook runs with those values and whether they outlive it. Walking the notebooks in order gives
the GPUs one attendee holds *during* each notebook (what is left from earlier notebooks plus what this one adds)
and so the peak; the class needs the peak times the attendees, per GPU node type.

Why a table per notebook and not a measurement: an instructor sizes the cluster before the class, from the
notebooks as shipped (or with the parameters they intend to use); ``tests/course`` checks the table against what
the notebooks really hold on a lab.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from llmd_lab import manifests
from llmd_lab.course import header as headers

#: Estimates for a connected cluster, to be replaced by what you measure (``oc get events`` "Pulled ... in").
REGISTRY_MB_PER_S = 100.0  # image pull from registry.redhat.io per node (assumption)
HUB_MB_PER_S = 50.0  # model download from Hugging Face per pod (assumption)
VLLM_IMAGE_GB = 9.7  # the vLLM CUDA image, compressed (the lab's stages.yaml uses the same size)
SLOT_MINUTES = 120
#: Notebooks a class cannot skip: the arc that shows what llm-d routing buys, and the clean-up.
CORE = ("00", "01", "02", "03", "04", "05", "10")


@dataclass(frozen=True)
class Service:
    """One LLMInferenceService a notebook runs: its GPUs and node type, and whether it stays after the notebook."""

    name: str
    gpus: int
    gpu_type: str
    model: str
    kept: bool
    note: str = ""


def parameters(path: Path) -> dict:
    """The literal values of the cell tagged ``parameters`` in a jupytext-percent notebook."""
    lines = path.read_text(encoding="utf-8").splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith("# %%") and '"parameters"' in line)
    except StopIteration:
        raise ValueError(f"{path.name}: no cell tagged 'parameters'") from None
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("# %%")), len(lines))
    values: dict = {}
    for node in ast.parse("\n".join(lines[start + 1:end])).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            values[node.targets[0].id] = ast.literal_eval(node.value)
    return values


def _shared(p: dict, gpu: str = "g6.4xlarge") -> Service:
    """The service notebook 02 creates and 03-05, 07 reuse (or create when missing)."""
    return Service(p["name"], p["replicas"], p.get("gpu", gpu), p["model"], kept=True)


def _nb03(p: dict) -> list[Service]:
    extra = [Service(f"{p['name']}-precise", p["replicas"], p["gpu"], p["model"], kept=True, note="try_precise")]
    return [_shared(p), *(extra if p.get("try_precise") else [])]


def _nb06(p: dict) -> list[Service]:
    tp = Service(p["name"], p["replicas"] * p["tensor"], p["gpu"], p["model"], kept=not p["cleanup"])
    mn = Service(f"{p['name']}-mn", 2, "g6.4xlarge", p["model"], kept=not p["cleanup"], note="the two-node layout needs the LeaderWorkerSet operator")
    return [tp, *([mn] if p["multi_node"] else [])]


def _nb07(p: dict) -> list[Service]:
    pd_gpus = p["decode_replicas"] + p["prefill_replicas"]
    return [_shared(p), Service(p["pd_name"], pd_gpus, p["gpu"], p["model"], kept=not p["cleanup"])]


def _nb08(p: dict) -> list[Service]:
    # One broken service at a time, each deleted before the next; "broken-gpus" asks for 12 on purpose and holds
    # whatever is free until it is deleted — counted as one GPU here, flagged in the notes.
    return [_shared(p), Service("broken-*", 1, p["gpu"], p["model"], kept=False,
                                note="step 1 asks for 12 GPUs: it takes every free GPU for a minute")]


#: Notebooks that delete the other workshop services before they start (``deploy.delete_workshop_services``), so
#: their own layout fits an attendee's GPUs; later notebooks re-create 02's service when they need it.
FREES_OTHERS = frozenset({"06", "09"})

DEMAND: dict[str, Callable[[dict], list[Service]]] = {
    "00": lambda p: [],
    "01": lambda p: [],
    "02": lambda p: [_shared(p)],
    "03": _nb03,
    "04": lambda p: [_shared(p)],
    "05": lambda p: [_shared(p)],
    "06": _nb06,
    "07": _nb07,
    "08": _nb08,
    "09": lambda p: [Service(p["name"], p["replicas"], p["gpu"], p["model"], kept=not p["cleanup"])],
    "10": lambda p: [],
}


@dataclass(frozen=True)
class Step:
    """One notebook in the sizing table."""

    number: str
    title: str
    minutes: int
    services: tuple[Service, ...]  # what runs during the notebook, earlier notebooks' included
    gpus_during: dict[str, int]  # per node type
    download_minutes: float  # first start of a model this notebook introduces (pull + download), on a cluster

    @property
    def gpus(self) -> int:
        return sum(self.gpus_during.values())


def _start_minutes(service: Service) -> float:
    size = manifests.model_size(service.model)
    weights_gb = size.weights_gib * 2**30 / 1e9 if size else 16.0
    return (VLLM_IMAGE_GB * 1000 / REGISTRY_MB_PER_S + weights_gb * 1000 / HUB_MB_PER_S) / 60


def plan(notebook_dir: Path = headers.NOTEBOOK_DIR) -> list[Step]:
    """Walk the notebooks in order: what each attendee holds during each one."""
    held: dict[str, Service] = {}
    seen_models: set[str] = set()
    steps = []
    for h in headers.read_all(notebook_dir):
        wanted = DEMAND[h.number](parameters(notebook_dir / f"{h.slug}.py"))
        if h.number in FREES_OTHERS:
            held = {}
        during = {**{s.name: s for s in wanted}, **held}  # later notebooks reuse a service; create if missing
        by_type: dict[str, int] = {}
        for s in during.values():
            by_type[s.gpu_type] = by_type.get(s.gpu_type, 0) + s.gpus
        new_models = {s.model for s in wanted} - seen_models
        seen_models |= new_models
        download = max((_start_minutes(s) for s in wanted if s.model in new_models), default=0.0)
        steps.append(Step(h.number, h.title, h.minutes, tuple(during.values()), by_type, download))
        held = {} if h.number == "10" else {k: s for k, s in during.items() if s.kept}
    return steps


def peak(steps: list[Step]) -> tuple[Step, dict[str, int]]:
    """The notebook with the most GPUs held at once, and the most of each node type held at once."""
    worst = max(steps, key=lambda s: s.gpus)
    per_type: dict[str, int] = {}
    for s in steps:
        for t, n in s.gpus_during.items():
            per_type[t] = max(per_type.get(t, 0), n)
    return worst, per_type


def class_nodes(per_type: dict[str, int], attendees: int) -> dict[str, int]:
    """GPU nodes of each type for ``attendees`` all at their peak at once (the worst case of a live class)."""
    return {t: math.ceil(n * attendees / manifests.GPU_TYPES[t].gpus_per_node) for t, n in per_type.items()}


def cut_list(steps: list[Step], slot_minutes: int = SLOT_MINUTES) -> tuple[list[Step], list[Step]]:
    """Keep the core arc, then add optional notebooks while they fit the slot; the rest is the cut list.

    Optional notebooks go in the order that costs the class least: fewest GPUs per minute of teaching first.
    """
    def minutes(s: Step) -> float:
        return s.minutes + s.download_minutes

    keep = [s for s in steps if s.number in CORE]
    optional = sorted((s for s in steps if s.number not in CORE), key=lambda s: (s.gpus / s.minutes, s.number))
    used = sum(minutes(s) for s in keep)
    cut = []
    for s in optional:
        if used + minutes(s) <= slot_minutes:
            keep.append(s)
            used += minutes(s)
        else:
            cut.append(s)
    return sorted(keep, key=lambda s: s.number), cut


def report(attendees: int = 1, slot_minutes: int = SLOT_MINUTES, notebook_dir: Path = headers.NOTEBOOK_DIR) -> str:
    """The sizing table as text (``llmd-lab sizing``)."""
    steps = plan(notebook_dir)
    worst, per_type = peak(steps)
    lines = [f"{'notebook':<52} {'min':>4} {'start':>6} {'GPUs held during':>17}"]
    for s in steps:
        held = ", ".join(f"{n} × {t}" for t, n in sorted(s.gpus_during.items())) or "0"
        start = f"+{s.download_minutes:.0f}" if s.download_minutes else ""
        lines.append(f"{s.number} {s.title[:49]:<49} {s.minutes:>4} {start:>6} {held:>17}")
    notes = sorted({f"{s.number}: {svc.note}" for s in steps for svc in s.services if svc.note and not svc.kept})
    nodes = class_nodes(per_type, attendees)
    keep, cut = cut_list(steps, slot_minutes)
    lines += [
        "",
        f"per attendee: peak {worst.gpus} GPUs during notebook {worst.number}; most of each type at once: "
        + ", ".join(f"{n} × {t}" for t, n in sorted(per_type.items())),
        f"class of {attendees}: {attendees * worst.gpus} GPUs at the peak if everyone is on notebook {worst.number} "
        "together; GPU nodes: " + ", ".join(f"{n} × {t}" for t, n in sorted(nodes.items())),
        *(f"note {n}" for n in notes),
        f"'start' = first start of a model on a cluster, minutes: vLLM image {VLLM_IMAGE_GB:g} GB at "
        f"{REGISTRY_MB_PER_S:g} MB/s + weights at {HUB_MB_PER_S:g} MB/s (estimates; pre-pull and pre-download "
        "to remove it: see the course page 'Disconnected clusters')",
        f"{slot_minutes}-minute slot: teach {' '.join(s.number for s in keep)} "
        f"({sum(s.minutes + s.download_minutes for s in keep):.0f} min); cut "
        + (", ".join(f"{s.number} ({s.minutes} min, {s.gpus} GPUs)" for s in cut) or "nothing"),
    ]
    return "\n".join(lines)
