"""The neutral conversation: what a client asked for, independent of OpenAI or Anthropic wire shapes.

Both request front ends (``openai_request``, ``anthropic_request``) produce a :class:`Conversation`;
``history`` repairs its turns and ``kiro_payload`` renders it as Kiro's ``conversationState``.
Parts, tool choices and thinking requests are tagged unions (``kind``) dispatched with ``assert_never``.

The bottom of the module holds what both front ends share: body validation that turns pydantic errors
into :class:`~kiro_tray.protocol.errors.InvalidRequest` naming the field path, and image checks.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, Protocol, TypeVar, assert_never

from pydantic import BaseModel, ConfigDict, Discriminator, ValidationError

from . import jsonsafe
from .errors import InvalidRequest
from .tokens import MESSAGE_OVERHEAD, estimate_image_tokens, estimate_text_tokens

Role = Literal["user", "assistant"]


@dataclass(frozen=True, slots=True)
class TextPart:
    text: str
    kind: Literal["text"] = "text"


@dataclass(frozen=True, slots=True)
class ImagePart:
    """A base64 image; ``media_type`` is one of Kiro's four (``image/png|jpeg|gif|webp``)."""

    media_type: str
    data: str
    kind: Literal["image"] = "image"


@dataclass(frozen=True, slots=True)
class ToolUsePart:
    """A tool call made by the assistant; ``input`` is a JSON object."""

    id: str
    name: str
    input: dict[str, Any]
    kind: Literal["tool_use"] = "tool_use"


@dataclass(frozen=True, slots=True)
class ToolResultPart:
    """The answer to a tool call; images returned by the tool (MCP screenshots) ride along."""

    tool_use_id: str
    content: str
    images: tuple[ImagePart, ...] = ()
    is_error: bool = False
    kind: Literal["tool_result"] = "tool_result"


@dataclass(frozen=True, slots=True)
class ThinkingPart:
    """Earlier reasoning; folded back into text when sent (kiro-protocol.md 2.6 rule 9)."""

    text: str
    kind: Literal["thinking"] = "thinking"


Part = TextPart | ImagePart | ToolUsePart | ToolResultPart | ThinkingPart


@dataclass(frozen=True, slots=True)
class Turn:
    role: Role
    parts: tuple[Part, ...]

    def text(self) -> str:
        """The turn's text parts joined by blank lines."""
        return "\n\n".join(p.text for p in self.parts if isinstance(p, TextPart) and p.text)


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    description: str
    schema: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolChoiceAuto:
    kind: Literal["auto"] = "auto"


@dataclass(frozen=True, slots=True)
class ToolChoiceNone:
    kind: Literal["none"] = "none"


@dataclass(frozen=True, slots=True)
class ToolChoiceAny:
    """OpenAI ``required`` / Anthropic ``any``: at least one tool call."""

    kind: Literal["any"] = "any"


@dataclass(frozen=True, slots=True)
class ToolChoiceTool:
    name: str
    kind: Literal["tool"] = "tool"


ToolChoice = ToolChoiceAuto | ToolChoiceNone | ToolChoiceAny | ToolChoiceTool


@dataclass(frozen=True, slots=True)
class ThinkingOff:
    kind: Literal["off"] = "off"


@dataclass(frozen=True, slots=True)
class ThinkingEnabled:
    budget_tokens: int
    kind: Literal["enabled"] = "enabled"


@dataclass(frozen=True, slots=True)
class ThinkingAdaptive:
    effort: str = "high"
    kind: Literal["adaptive"] = "adaptive"


ThinkingRequest = ThinkingOff | ThinkingEnabled | ThinkingAdaptive


@dataclass(frozen=True, slots=True)
class Conversation:
    """One client request in neutral form. ``model`` is the name exactly as the client sent it."""

    model: str
    system: str
    turns: tuple[Turn, ...]
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice = field(default_factory=ToolChoiceAuto)
    parallel_tool_calls: bool = True
    thinking: ThinkingRequest = field(default_factory=ThinkingOff)
    stop_sequences: tuple[str, ...] = ()
    max_tokens: int | None = None
    stream: bool = False
    include_usage: bool = False
    conversation_id: str | None = None
    dropped_tools: tuple[str, ...] = ()
    #: The client's own say on dropping the oldest turns when the conversation is too large (the Responses
    #: API's ``truncation``); None leaves it to the gateway's TRIM_HISTORY setting.
    trim_history: bool | None = None


class ClientRequest(Protocol):
    """A validated request of some client API: what the gateway needs of it before conversion."""

    def image_urls(self) -> list[str]:
        """The remote (http/https) image URLs to fetch before :meth:`to_conversation`."""
        ...

    def to_conversation(self, fetched_images: Mapping[str, tuple[str, str]] | None = None) -> Conversation:
        """The neutral conversation; ``fetched_images`` maps each remote URL to (media type, base64)."""
        ...


#: What a remote image stands for before it is fetched (validation, token counting): the smallest image.
STAND_IN_IMAGE = ("image/png", "AAAA")


def stand_ins(request: ClientRequest) -> dict[str, tuple[str, str]]:
    return dict.fromkeys(request.image_urls(), STAND_IN_IMAGE)


def estimate_request_tokens(request: ClientRequest) -> int:
    """The input tokens of a validated request (``count_tokens``); remote images count at the smallest
    image cost, unfetched."""
    return estimate_conversation_tokens(request.to_conversation(stand_ins(request)))


def part_tokens(part: Part) -> int:
    """Estimated tokens of one part."""
    match part:
        case TextPart() | ThinkingPart():
            return estimate_text_tokens(part.text)
        case ImagePart():
            return estimate_image_tokens(len(part.data))
        case ToolUsePart():
            return estimate_text_tokens(part.name) + estimate_text_tokens(json.dumps(part.input))
        case ToolResultPart():
            images = sum(estimate_image_tokens(len(i.data)) for i in part.images)
            return estimate_text_tokens(part.content) + images
        case _:
            assert_never(part)


def tool_tokens(tool: Tool) -> int:
    return (
        estimate_text_tokens(tool.name)
        + estimate_text_tokens(tool.description)
        + estimate_text_tokens(json.dumps(tool.schema))
    )


def estimate_conversation_tokens(conversation: Conversation) -> int:
    """Estimated input tokens: system text, every turn (with images) and the tool definitions."""
    total = estimate_text_tokens(conversation.system)
    for turn in conversation.turns:
        total += MESSAGE_OVERHEAD + sum(part_tokens(p) for p in turn.parts)
    total += sum(tool_tokens(t) for t in conversation.tools)
    return max(1, total)


# --- helpers for the request front ends -------------------------------------------------------------


class RequestModel(BaseModel):
    """Base of the request models: permissive, unknown fields are accepted and ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)


TAG_PREFIX = "@"
_BAD_TAG = "invalid_type"


def type_tag(value: Any) -> str:
    """Discriminator for unions of blocks: the ``type`` member, prefixed so error paths can drop it."""
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return f"{TAG_PREFIX}{kind}"


def block_discriminator(expected: Sequence[str], tag: Callable[[Any], str] = type_tag) -> Discriminator:
    """A ``type``-keyed discriminator (``tag`` maps a value to its ``Tag``) whose error lists ``expected``."""
    return Discriminator(
        tag,
        custom_error_type=_BAD_TAG,
        custom_error_message=f"expected a type among: {', '.join(expected)}",
    )


def _error_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc if not (isinstance(p, str) and p.startswith(TAG_PREFIX)))


def _error_message(error: Any) -> str:
    message = str(error["msg"])
    given = error.get("input")
    if error["type"] == _BAD_TAG and isinstance(given, dict) and isinstance(given.get("type"), str):
        return f"unsupported type {jsonsafe.clip(given['type'])!r}; {message}"
    return message


M = TypeVar("M", bound=BaseModel)


def parse_body(model: type[M], body: object) -> M:
    """Validate a parsed JSON body; any problem becomes ``InvalidRequest`` naming the first bad field."""
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        first = errors[0]
        path = _error_path(tuple(first["loc"]))
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        raise InvalidRequest(f"{path or 'body'}: {_error_message(first)}{more}", param=path or None) from None


def bad_field(param: str, message: str) -> InvalidRequest:
    """An ``InvalidRequest`` for the field at ``param``."""
    return InvalidRequest(f"{param}: {message}", param=param)


IMAGE_MEDIA_TYPES: Mapping[str, str] = MappingProxyType(
    {
        "image/png": "image/png",
        "image/jpeg": "image/jpeg",
        "image/jpg": "image/jpeg",
        "image/gif": "image/gif",
        "image/webp": "image/webp",
    }
)
_DATA_URL = re.compile(r"data:([^;,]*)((?:;[^;,]*)*),(.*)", re.DOTALL)


def split_data_url(url: str, param: str) -> tuple[str, str]:
    """``data:image/png;base64,XXXX`` -> ``("image/png", "XXXX")``."""
    m = _DATA_URL.fullmatch(url)
    if m is None or ";base64" not in m.group(2).lower():
        raise bad_field(param, "only base64 data: URLs are supported for images")
    return m.group(1), m.group(3)


def image_part(media_type: str, data: str, param: str) -> ImagePart:
    """A checked :class:`ImagePart`: one of Kiro's four image types, valid non-empty base64.
    A full data URL in ``data`` (some clients send one) is unwrapped (kiro-protocol.md 2.9)."""
    if data.startswith("data:"):
        media_type, data = split_data_url(data, param)
    normalized = IMAGE_MEDIA_TYPES.get(media_type.strip().lower())
    if normalized is None:
        raise bad_field(
            param, f"unsupported image type {media_type!r}; Kiro accepts image/png, jpeg, gif and webp"
        )
    cleaned = "".join(data.split())
    if not cleaned:
        raise bad_field(param, "the image data is empty")
    try:
        base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        raise bad_field(param, "the image data is not valid base64") from None
    return ImagePart(normalized, cleaned)
