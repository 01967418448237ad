"""Which Hugging Face repositories are gated (``data/hf_gated.yaml``, each entry with its source).

The storage-initializer cannot download a gated repository without ``HF_TOKEN``; the simulated one fails the
way huggingface_hub does, and the library can warn before a deploy. Kept as data so an instructor can add the
models a course uses.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from functools import cache
from importlib import resources

import yaml

HF_SCHEME = "hf://"


@cache
def gated_patterns() -> tuple[str, ...]:
    """The gated repo-id patterns (fnmatch) from ``data/hf_gated.yaml``."""
    text = resources.files(__package__).joinpath("data", "hf_gated.yaml").read_text()
    return tuple(str(entry["pattern"]) for entry in yaml.safe_load(text)["gated"])


def repo_id(uri_or_id: str) -> str:
    """``hf://org/name:rev`` or ``org/name`` → ``org/name``."""
    return uri_or_id.removeprefix(HF_SCHEME).partition(":")[0]


def is_gated(uri_or_id: str) -> bool:
    """Whether downloading this repository needs a token (the Hub resolves repo ids case-insensitively)."""
    rid = repo_id(uri_or_id).lower()
    return any(fnmatchcase(rid, pattern.lower()) for pattern in gated_patterns())
