"""The per-stream SSE frame builder writes exactly the bytes of encoding each whole chunk with json.dumps."""

from __future__ import annotations

import json

import pytest

from llmd_lab.sim.vllm.serving import _ChunkFrames


def _reference(obj: object) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


@pytest.mark.parametrize("include_usage", [False, True])
@pytest.mark.parametrize("text", ["", "hello", 'quote " and \\ back', "naïve ☃ 中文", "line\nbreak\t"])
def test_frames_equal_json_dumps_of_the_whole_chunk(include_usage: bool, text: str) -> None:
    base = {"id": "chatcmpl-ab\"c", "object": "chat.completion.chunk", "created": 1764800000, "model": "Qwen/Qwen3-0.6B"}
    usage = {"usage": None} if include_usage else {}
    frame = _ChunkFrames(base, include_usage)
    for choice in ({"index": 0, "delta": {"content": text}, "logprobs": None, "finish_reason": None},
                   {"index": 0, "text": text, "logprobs": None, "finish_reason": "length", "stop_reason": None}):
        assert frame(choice) == _reference({**base, "choices": [choice], **usage})


def test_an_empty_head_still_frames_valid_json() -> None:
    assert json.loads(_ChunkFrames({}, False)({"index": 0})[6:]) == {"choices": [{"index": 0}]}
