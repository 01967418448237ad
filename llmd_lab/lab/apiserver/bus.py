"""The watch event bus: a bounded history of changes plus live subscribers, per group kind.

A watch is "replay then stream": events after the client's ``resourceVersion`` come from the history
window (410 Gone when that window no longer reaches back far enough), then live events follow from a
queue registered in the same step, so nothing falls between the two.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

GroupKind = tuple[str, str]


@dataclass(frozen=True)
class WatchEvent:
    """One watch event; ``type`` is ADDED, MODIFIED, DELETED, BOOKMARK (or ERROR over HTTP)."""

    type: str
    object: dict


@dataclass(frozen=True)
class Change:
    """One committed write, with the object before and after (``old``/``new`` None for create/delete)."""

    rv: int
    group_kind: GroupKind
    old: dict | None
    new: dict | None


Filter = Callable[[dict], bool]


@dataclass(eq=False)
class Subscriber:
    group_kind: GroupKind
    matches: Filter
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)


def to_event(change: Change, matches: Filter) -> WatchEvent | None:
    """What a watcher with this filter sees: a change that moves an object into (out of) its selection is
    an ADDED (DELETED) event, as kube-apiserver's watch cache reports it."""
    was = change.old is not None and matches(change.old)
    now = change.new is not None and matches(change.new)
    if change.new is None:
        return WatchEvent("DELETED", change.old) if was else None  # type: ignore[arg-type]
    if was and now:
        return WatchEvent("MODIFIED", change.new)
    if now:
        return WatchEvent("ADDED", change.new)
    if was:
        return WatchEvent("DELETED", change.new)
    return None


class EventBus:
    """The history is bounded by count and by bytes (kube-apiserver's watch cache is bounded by count; the
    lab also caps the bytes it holds so that a few huge objects written in a loop cannot exhaust memory)."""

    def __init__(self, history: int, floor_rv: int, history_bytes: int) -> None:
        self._history: deque[tuple[Change, int]] = deque()
        self._limit = history
        self._byte_limit = history_bytes
        self._bytes = 0
        self.floor_rv = floor_rv  # a watch may resume from any rv >= floor_rv
        self._subs: dict[GroupKind, set[Subscriber]] = {}

    @property
    def held(self) -> tuple[int, int]:
        """(changes, bytes) in the history window."""
        return len(self._history), self._bytes

    def publish(self, change: Change, size: int = 0) -> None:
        """``size``: the encoded size of the change's object, counted against the byte bound."""
        self._history.append((change, size))
        self._bytes += size
        while self._history and (len(self._history) > self._limit or self._bytes > self._byte_limit):
            dropped, dropped_size = self._history.popleft()
            self._bytes -= dropped_size
            self.floor_rv = dropped.rv
        for sub in self._subs.get(change.group_kind, ()):
            event = to_event(change, sub.matches)
            if event is not None:
                sub.queue.put_nowait(event)

    def since(self, rv: int, group_kind: GroupKind, matches: Filter) -> list[WatchEvent]:
        out = []
        for change, _ in self._history:
            if change.rv > rv and change.group_kind == group_kind:
                event = to_event(change, matches)
                if event is not None:
                    out.append(event)
        return out

    def subscribe(self, group_kind: GroupKind, matches: Filter) -> Subscriber:
        sub = Subscriber(group_kind, matches)
        self._subs.setdefault(group_kind, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        subs = self._subs.get(sub.group_kind)
        if subs is not None:
            subs.discard(sub)

    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._subs.values())


def clone(value: Any) -> Any:
    """Deep copy of a JSON tree, several times faster than ``copy.deepcopy``."""
    if isinstance(value, dict):
        return {k: clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clone(v) for v in value]
    return value
