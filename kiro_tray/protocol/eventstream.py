"""AWS event-stream framing (``application/vnd.amazon.eventstream``): an incremental decoder and an encoder.

A frame is::

    total length (u32 BE) | headers length (u32 BE) | prelude CRC32 (over bytes 0..7)
    headers | payload | message CRC32 (over everything before it)

Header entries are ``name length (u8) | name | type (u8) | value``. Kiro emits only string headers
(type 7), but every type of the format is decoded so an unexpected header never breaks a stream.

The decoder is fed network chunks of any size and returns the complete frames they finish. Payloads
are kept as bytes: UTF-8 is decoded per payload by the caller, never per chunk, so a character split
across two chunks is never damaged.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

PRELUDE_LEN = 12
MIN_FRAME_LEN = 16
MAX_FRAME_LEN = 16 * 1024 * 1024

HeaderValue = bool | int | bytes | str | uuid.UUID

_HEADER_TYPE_STRING = 7


class EventStreamError(ValueError):
    """The byte stream is not a valid event stream (bad CRC, impossible length, bad header)."""


@dataclass(frozen=True, slots=True)
class Frame:
    headers: Mapping[str, HeaderValue]
    payload: bytes

    def header(self, name: str) -> str | None:
        value = self.headers.get(name)
        if value is None:
            return None
        if isinstance(value, bytes):
            return value.decode("utf-8", errors="replace")
        return str(value)

    @property
    def message_type(self) -> str:
        return self.header(":message-type") or "event"

    @property
    def event_type(self) -> str | None:
        return self.header(":event-type")


def _crc(data: bytes | memoryview) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def _decode_headers(block: memoryview) -> dict[str, HeaderValue]:
    headers: dict[str, HeaderValue] = {}
    pos = 0
    end = len(block)
    try:
        while pos < end:
            name_len = block[pos]
            pos += 1
            name = bytes(block[pos : pos + name_len]).decode("utf-8")
            pos += name_len
            kind = block[pos]
            pos += 1
            value: HeaderValue
            if kind == 0:
                value = True
            elif kind == 1:
                value = False
            elif kind == 2:
                (value,) = struct.unpack_from(">b", block, pos)
                pos += 1
            elif kind == 3:
                (value,) = struct.unpack_from(">h", block, pos)
                pos += 2
            elif kind == 4:
                (value,) = struct.unpack_from(">i", block, pos)
                pos += 4
            elif kind in (5, 8):
                (value,) = struct.unpack_from(">q", block, pos)
                pos += 8
            elif kind in (6, 7):
                (length,) = struct.unpack_from(">H", block, pos)
                pos += 2
                raw = bytes(block[pos : pos + length])
                if len(raw) != length:
                    raise EventStreamError("header value runs past the header block")
                pos += length
                value = raw.decode("utf-8") if kind == 7 else raw
            elif kind == 9:
                value = uuid.UUID(bytes=bytes(block[pos : pos + 16]))
                pos += 16
            else:
                raise EventStreamError(f"unknown header value type {kind}")
            if pos > end:
                raise EventStreamError("header runs past the header block")
            headers[name] = value
    except (IndexError, struct.error, UnicodeDecodeError, ValueError) as exc:
        if isinstance(exc, EventStreamError):
            raise
        raise EventStreamError(f"malformed header block: {exc}") from exc
    return headers


class FrameDecoder:
    """Incremental decoder: ``feed(chunk)`` returns the frames completed by that chunk.

    Both CRCs are checked; any damage raises :class:`EventStreamError` (a stream that lost framing
    cannot be trusted to resynchronise, so the caller ends the response with an error).
    """

    __slots__ = ("_buf", "_headers", "frames_decoded")

    #: Distinct header blocks remembered: Kiro repeats the same few (one per event type) on every frame.
    HEADER_CACHE = 32

    def __init__(self) -> None:
        self._buf = bytearray()
        self._headers: dict[bytes, Mapping[str, HeaderValue]] = {}
        self.frames_decoded = 0

    @property
    def pending(self) -> int:
        """Bytes held that do not yet form a whole frame (non-zero at end of stream = truncated)."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame]:
        if data:
            self._buf += data
        frames: list[Frame] = []
        buf = self._buf
        start = 0
        while len(buf) - start >= PRELUDE_LEN:
            total, headers_len, prelude_crc = struct.unpack_from(">III", buf, start)
            if _crc(memoryview(buf)[start : start + 8]) != prelude_crc:
                raise EventStreamError("prelude CRC mismatch")
            if total < MIN_FRAME_LEN or total > MAX_FRAME_LEN or headers_len > total - MIN_FRAME_LEN:
                raise EventStreamError(f"impossible frame length {total} (headers {headers_len})")
            if len(buf) - start < total:
                break
            view = memoryview(buf)[start : start + total]
            (message_crc,) = struct.unpack_from(">I", view, total - 4)
            if _crc(view[: total - 4]) != message_crc:
                view.release()
                raise EventStreamError("message CRC mismatch")
            raw_headers = bytes(view[PRELUDE_LEN : PRELUDE_LEN + headers_len])
            headers = self._headers.get(raw_headers)
            if headers is None:
                headers = MappingProxyType(_decode_headers(memoryview(raw_headers)))
                if len(self._headers) < self.HEADER_CACHE:
                    self._headers[raw_headers] = headers
            payload = bytes(view[PRELUDE_LEN + headers_len : total - 4])
            view.release()
            frames.append(Frame(headers, payload))
            start += total
        if start:
            del buf[:start]
        self.frames_decoded += len(frames)
        return frames


def _encode_headers(headers: Mapping[str, str]) -> bytes:
    out = bytearray()
    for name, value in headers.items():
        raw_name = name.encode("utf-8")
        raw_value = value.encode("utf-8")
        out += struct.pack(">B", len(raw_name)) + raw_name
        out += struct.pack(">BH", _HEADER_TYPE_STRING, len(raw_value)) + raw_value
    return bytes(out)


def encode_frame(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One frame with string headers (the only header type Kiro sends)."""
    header_block = _encode_headers(headers)
    total = PRELUDE_LEN + len(header_block) + len(payload) + 4
    prelude = struct.pack(">II", total, len(header_block))
    body = prelude + struct.pack(">I", _crc(prelude)) + header_block + payload
    return body + struct.pack(">I", _crc(body))


def encode_event(event_type: str, payload: bytes) -> bytes:
    """An ``event`` frame, headers in the order Kiro uses."""
    return encode_frame(
        {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"},
        payload,
    )


def encode_exception(exception_type: str, payload: bytes) -> bytes:
    """An ``exception`` frame such as ``ContentLengthExceededException``."""
    return encode_frame(
        {
            ":exception-type": exception_type,
            ":content-type": "application/json",
            ":message-type": "exception",
        },
        payload,
    )
