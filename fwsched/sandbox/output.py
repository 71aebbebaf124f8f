"""The captured output of one invocation, bounded while it is read."""

from __future__ import annotations

import codecs
from collections.abc import Callable

LOG_CAP = 1024 * 1024  # bytes of output kept per invocation (SPEC §3)
TRUNCATED = "\n[output truncated]"

OutputCallback = Callable[[str], None]


class OutputBuffer:
    """Keeps the first ``cap`` bytes of what a handler wrote and counts (then drops) the rest.

    The parent's memory stays bounded however much a handler prints, and the
    worker never blocks on a full pipe because everything is read.
    """

    def __init__(self, cap: int = LOG_CAP, on_text: OutputCallback | None = None) -> None:
        self._cap = cap
        self._on_text = on_text
        self._parts: list[str] = []
        self._kept = 0
        self.dropped = 0
        self._decoder: codecs.IncrementalDecoder | None = None

    def feed(self, chunk: bytes) -> None:
        room = self._cap - self._kept
        if len(chunk) > room:
            self.dropped += len(chunk) - room
            chunk = chunk[:room]
        if not chunk:
            return
        self._kept += len(chunk)
        if self._decoder is None:
            self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        text = self._decoder.decode(chunk)
        if text:
            self._parts.append(text)
            if self._on_text is not None:
                try:
                    self._on_text(text)
                except Exception:  # a broken display must not break the invocation
                    self._on_text = None

    @property
    def truncated(self) -> bool:
        return self.dropped > 0

    def text(self) -> str:
        """Everything kept, decoded; ends with the truncation marker if anything was dropped."""
        if self.truncated:
            # The cut may split a character: its bytes stay in the decoder, dropped.
            return "".join(self._parts) + TRUNCATED
        if self._decoder is not None:
            tail = self._decoder.decode(b"", final=True)
            if tail:
                self._parts.append(tail)
                self._decoder = None
        return "".join(self._parts)
