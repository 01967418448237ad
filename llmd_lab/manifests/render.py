"""Manifests to and from YAML a learner can read and ``oc apply``, with a comment beside every workaround
saying why it is there (:data:`~llmd_lab.manifests.keys.WHY`)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

import yaml

from llmd_lab.manifests.keys import NAMESPACE_TEMPLATE, WHY


class _Dumper(yaml.SafeDumper):
    """Plain YAML a learner can read and ``oc apply``: block strings, and no ``&id001``/``*id001`` anchors
    where one dict or list appears twice (each place is written out in full)."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str_presenter)


def with_namespace(obj: Mapping, namespace: str) -> dict:
    """A copy placed in ``namespace``, with the ``{{ .ObjectMeta.Namespace }}`` template filled in."""
    out = json.loads(json.dumps(obj).replace(NAMESPACE_TEMPLATE, namespace))
    out["metadata"]["namespace"] = namespace
    return out


def to_yaml(obj: Mapping | Iterable[Mapping]) -> str:
    """Render one object (or several, as a multi-document stream) to YAML, commenting the workarounds."""
    docs = [obj] if isinstance(obj, Mapping) else list(obj)
    out = []
    for doc in docs:
        text = yaml.dump(dict(doc), Dumper=_Dumper, sort_keys=False, width=1000)
        lines = []
        for line in text.splitlines():
            for key, why in WHY.items():
                if line.strip().startswith((key, f"- {key}")):
                    indent = line[: len(line) - len(line.lstrip())]
                    lines.append(f"{indent}# {why}")
            lines.append(line)
        out.append("\n".join(lines) + "\n")
    return "---\n".join(out)


def from_yaml(text: str) -> list[dict]:
    """Parse a YAML stream into dicts (skips empty documents)."""
    return [d for d in yaml.safe_load_all(text) if d]
