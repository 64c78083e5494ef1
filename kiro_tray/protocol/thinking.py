"""Split a leading ``<thinking>...</thinking>`` block from streamed response text (kiro-protocol.md 3.6).

Used only when the client asked for thinking and the gateway prompted the model for tags. Rules:

- Only an opening tag at the very start (after optional whitespace, which is dropped) opens thinking;
  anything else makes the whole response plain text. One newline after ``<thinking>`` is stripped.
- A ``</thinking>`` is the real end only when it is followed by a line break (spaces or tabs may come
  first) or by nothing but whitespace up to the end of the stream, and when neither side of the tag
  touches a quote or backtick. So a mention such as `` `</thinking>` `` or ``"</thinking>"`` stays
  inside the thinking text. Whitespace just before the real end is dropped.
- Whitespace-only lines after the real end are dropped; everything after is text.

Chunks may split tags anywhere; the splitter holds back only what could still be part of a tag (or of
whitespace that might be dropped), so the output never depends on how the input was chunked.
"""

from __future__ import annotations

from typing import Final, Literal

PieceKind = Literal["thinking", "text"]
Piece = tuple[PieceKind, str]

OPEN_TAG: Final = "<thinking>"
CLOSE_TAG: Final = "</thinking>"
_QUOTES: Final = frozenset("`\"'")
_WS: Final = " \t\r\n"

_State = Literal["start", "after_open", "thinking", "after_close", "text"]
_Verdict = Literal["real", "mention", "wait"]


def _partial_tag_suffix(buf: str) -> int:
    """Length of the longest suffix of ``buf`` that is a proper prefix of the closing tag."""
    for k in range(min(len(CLOSE_TAG) - 1, len(buf)), 0, -1):
        if buf.endswith(CLOSE_TAG[:k]):
            return k
    return 0


def _close_verdict(before: str, after: str, final: bool) -> _Verdict:
    """Is a ``</thinking>`` preceded by ``before`` (one char or "") and followed by ``after`` the end?"""
    if before in _QUOTES or after[:1] in _QUOTES:
        return "mention"
    rest = after.lstrip(" \t")
    if not rest or rest == "\r":
        return "real" if final else "wait"
    return "real" if rest[0] == "\n" or rest.startswith("\r\n") else "mention"


class ThinkingSplitter:
    """Feed text chunks, get ``("thinking" | "text", text)`` pieces; ``flush()`` at the end."""

    __slots__ = ("_buf", "_prev", "_state")

    def __init__(self) -> None:
        self._state: _State = "start"
        self._buf = ""
        self._prev = ""  # last thinking character emitted (the left neighbour of a tag at buffer start)

    @property
    def in_thinking(self) -> bool:
        """True while inside the thinking block."""
        return self._state in ("after_open", "thinking")

    def feed(self, chunk: str) -> list[Piece]:
        if self._state == "text":
            return [("text", chunk)] if chunk else []
        self._buf += chunk
        out: list[Piece] = []
        self._run(out, final=False)
        return out

    def flush(self) -> list[Piece]:
        """End of stream: decide everything still held back."""
        out: list[Piece] = []
        self._run(out, final=True)
        return out

    def _emit(self, out: list[Piece], kind: PieceKind, text: str) -> None:
        if not text:
            return
        if kind == "thinking":
            self._prev = text[-1]
        if out and out[-1][0] == kind:
            out[-1] = (kind, out[-1][1] + text)
        else:
            out.append((kind, text))

    def _run(self, out: list[Piece], *, final: bool) -> None:
        while True:
            buf = self._buf
            if self._state == "start":
                stripped = buf.lstrip()
                if stripped.startswith(OPEN_TAG):
                    self._buf = stripped[len(OPEN_TAG) :]
                    self._state = "after_open"
                    continue
                if not final and OPEN_TAG.startswith(stripped):
                    return
                self._state = "text"
                self._buf = ""
                self._emit(out, "text", buf)
                return
            if self._state == "after_open":
                if not buf and not final:
                    return
                self._buf = buf.removeprefix("\n")
                self._state = "thinking"
                continue
            if self._state == "thinking":
                if self._step_thinking(out, final):
                    continue
                return
            if self._state == "after_close":
                content = buf.lstrip(_WS)
                if not content:
                    # Drop complete whitespace lines now; keep the unfinished one (it may be indentation).
                    self._buf = "" if final else buf[buf.rfind("\n") + 1 :]
                    return
                whitespace = buf[: len(buf) - len(content)]
                self._state = "text"
                self._buf = ""
                self._emit(out, "text", buf[whitespace.rfind("\n") + 1 :])
                return
            # "text": only reached from the states above, which already emitted the buffer.
            return

    def _step_thinking(self, out: list[Piece], final: bool) -> bool:
        """Advance inside the thinking block; True if the state machine should keep going."""
        buf = self._buf
        i = buf.find(CLOSE_TAG)
        if i < 0:
            if final:
                self._buf = ""
                self._emit(out, "thinking", buf.rstrip(_WS))
                return False
            body = buf[: len(buf) - _partial_tag_suffix(buf)]
            safe = len(body.rstrip(_WS))
            self._buf = buf[safe:]
            self._emit(out, "thinking", buf[:safe])
            return False
        end = i + len(CLOSE_TAG)
        before = buf[i - 1] if i > 0 else self._prev
        verdict = _close_verdict(before, buf[end:], final)
        if verdict == "mention":
            self._buf = buf[end:]
            self._emit(out, "thinking", buf[:end])
            return True
        safe = len(buf[:i].rstrip(_WS))
        if verdict == "wait":
            self._buf = buf[safe:]
            self._emit(out, "thinking", buf[:safe])
            return False
        self._buf = buf[end:]
        self._state = "after_close"
        self._emit(out, "thinking", buf[:safe])
        return True
