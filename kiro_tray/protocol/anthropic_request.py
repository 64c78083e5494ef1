"""Anthropic ``POST /v1/messages`` (and ``count_tokens``) request bodies -> the neutral :class:`Conversation`.

Honoured: ``model``; ``system`` (string or text blocks); ``messages`` (``user``/``assistant``, string or
blocks) with blocks ``text``, ``image`` (base64 source; url source only when the gateway fetched it,
see :func:`remote_image_urls`), ``document`` (plain-text or content sources), ``tool_use``,
``tool_result`` (string or ``text``/``image``/``document`` blocks, ``is_error``), ``thinking`` (folded
back as ``<thinking>`` text), ``server_tool_use`` and server tool results such as
``web_search_tool_result`` (replayed as short text, since Kiro cannot run server tools); ``tools``
(custom tools; any tool whose ``type`` is not ``custom``, e.g. ``web_search_20250305``,
``bash_20250124``, ``text_editor_*``, is dropped and reported); ``tool_choice`` (``auto``/``any``/
``tool``/``none``, ``disable_parallel_tool_use``); ``thinking`` (``enabled`` with ``budget_tokens``,
``adaptive``, ``disabled``); ``output_config.effort``; ``stop_sequences``; ``max_tokens``; ``stream``;
``metadata.user_id`` (a session uuid inside it becomes a stable conversationId).

Accepted and ignored: ``cache_control`` (everywhere), ``citations``, thinking ``signature``,
``redacted_thinking`` blocks (their content is encrypted and meaningless to another model),
``temperature``, ``top_p``, ``top_k``, ``service_tier``, ``container``, ``context_management``,
``mcp_servers``, and any unknown field.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from typing import Annotated, Any, Literal, assert_never

from pydantic import BeforeValidator, Field, Tag

from .conversation import (
    Conversation,
    ImagePart,
    Part,
    RequestModel,
    TextPart,
    ThinkingAdaptive,
    ThinkingEnabled,
    ThinkingOff,
    ThinkingPart,
    ThinkingRequest,
    Tool,
    ToolChoice,
    ToolChoiceAny,
    ToolChoiceAuto,
    ToolChoiceNone,
    ToolChoiceTool,
    ToolResultPart,
    ToolUsePart,
    Turn,
    bad_field,
    block_discriminator,
    image_part,
    parse_body,
)
from .errors import InvalidRequest

#: Budget used when ``thinking.enabled`` comes without ``budget_tokens``.
DEFAULT_THINKING_BUDGET = 20_000
SERVER_TOOL_RESULTS = (
    "web_search_tool_result",
    "web_fetch_tool_result",
    "code_execution_tool_result",
    "bash_code_execution_tool_result",
    "text_editor_code_execution_tool_result",
    "tool_search_tool_result",
)
_SESSION = re.compile(r"session_([0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12})")


def _blocks_from_string(value: Any) -> Any:
    if value is None:
        return []
    if isinstance(value, str):
        return [{"type": "text", "text": value}]
    return value


def _block_tag(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return "@server_tool_result" if kind in SERVER_TOOL_RESULTS else f"@{kind}"


class TextBlock(RequestModel):
    type: Literal["text"]
    text: str


class Base64Source(RequestModel):
    type: Literal["base64"]
    media_type: str
    data: str


class UrlSource(RequestModel):
    type: Literal["url"]
    url: str


class FileSource(RequestModel):
    type: Literal["file"]
    file_id: str = ""


class PlainTextSource(RequestModel):
    type: Literal["text"]
    data: str


class ContentSource(RequestModel):
    type: Literal["content"]
    content: Annotated[list[TextBlock], BeforeValidator(_blocks_from_string)]


ImageSource = Annotated[
    Annotated[Base64Source, Tag("@base64")]
    | Annotated[UrlSource, Tag("@url")]
    | Annotated[FileSource, Tag("@file")],
    block_discriminator(("base64", "url", "file")),
]
DocumentSource = Annotated[
    Annotated[PlainTextSource, Tag("@text")]
    | Annotated[ContentSource, Tag("@content")]
    | Annotated[Base64Source, Tag("@base64")]
    | Annotated[UrlSource, Tag("@url")]
    | Annotated[FileSource, Tag("@file")],
    block_discriminator(("text", "content", "base64", "url", "file")),
]


class ImageBlock(RequestModel):
    type: Literal["image"]
    source: ImageSource


class DocumentBlock(RequestModel):
    type: Literal["document"]
    source: DocumentSource
    title: str | None = None


ToolResultContent = Annotated[
    Annotated[TextBlock, Tag("@text")]
    | Annotated[ImageBlock, Tag("@image")]
    | Annotated[DocumentBlock, Tag("@document")],
    block_discriminator(("text", "image", "document")),
]


class ToolUseBlock(RequestModel):
    type: Literal["tool_use"]
    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    input: dict[str, Any] = Field(default_factory=dict)


class ServerToolUseBlock(RequestModel):
    type: Literal["server_tool_use"]
    id: str = ""
    name: str = ""
    input: Any = None


class ToolResultBlock(RequestModel):
    type: Literal["tool_result"]
    tool_use_id: str = Field(min_length=1)
    content: Annotated[list[ToolResultContent], BeforeValidator(_blocks_from_string)] = Field(
        default_factory=list
    )
    is_error: bool = False


class ServerToolResultBlock(RequestModel):
    type: str
    tool_use_id: str = ""
    content: Any = None


class ThinkingBlock(RequestModel):
    type: Literal["thinking"]
    thinking: str


class RedactedThinkingBlock(RequestModel):
    type: Literal["redacted_thinking"]


ContentBlock = Annotated[
    Annotated[TextBlock, Tag("@text")]
    | Annotated[ImageBlock, Tag("@image")]
    | Annotated[DocumentBlock, Tag("@document")]
    | Annotated[ToolUseBlock, Tag("@tool_use")]
    | Annotated[ServerToolUseBlock, Tag("@server_tool_use")]
    | Annotated[ToolResultBlock, Tag("@tool_result")]
    | Annotated[ServerToolResultBlock, Tag("@server_tool_result")]
    | Annotated[ThinkingBlock, Tag("@thinking")]
    | Annotated[RedactedThinkingBlock, Tag("@redacted_thinking")],
    block_discriminator(
        (
            "text",
            "image",
            "document",
            "tool_use",
            "tool_result",
            "thinking",
            "redacted_thinking",
            "server_tool_use",
            *SERVER_TOOL_RESULTS,
        ),
        _block_tag,
    ),
]


class Message(RequestModel):
    #: ``system`` appears mid-conversation in newer Claude Code versions (beta mid-conversation-system).
    role: Literal["user", "assistant", "system"]
    content: Annotated[list[ContentBlock], BeforeValidator(_blocks_from_string)]


class ToolDefinition(RequestModel):
    type: str | None = None
    name: str = ""
    description: str | None = None
    input_schema: Any = None


class ToolChoiceBody(RequestModel):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool = False


class ThinkingEnabledBody(RequestModel):
    type: Literal["enabled"]
    budget_tokens: int = Field(default=DEFAULT_THINKING_BUDGET, ge=1)


class ThinkingAdaptiveBody(RequestModel):
    type: Literal["adaptive"]


class ThinkingDisabledBody(RequestModel):
    type: Literal["disabled"]


ThinkingBody = Annotated[
    Annotated[ThinkingEnabledBody, Tag("@enabled")]
    | Annotated[ThinkingAdaptiveBody, Tag("@adaptive")]
    | Annotated[ThinkingDisabledBody, Tag("@disabled")],
    block_discriminator(("enabled", "adaptive", "disabled")),
]


class OutputConfig(RequestModel):
    effort: Literal["low", "medium", "high", "max", "xhigh"] | None = None


class Metadata(RequestModel):
    user_id: str | None = None


class MessagesRequest(RequestModel):
    model: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    system: Annotated[list[TextBlock], BeforeValidator(_blocks_from_string)] = Field(default_factory=list)
    tools: list[ToolDefinition] | None = None
    tool_choice: ToolChoiceBody | None = None
    thinking: ThinkingBody | None = None
    output_config: OutputConfig | None = None
    stop_sequences: list[str] | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    stream: bool = False
    metadata: Metadata | None = None

    def image_urls(self) -> list[str]:
        """The image URLs (``source.type == "url"``), also inside tool results, in order, without
        duplicates: the gateway fetches these and passes them to :meth:`to_conversation`."""
        urls: list[str] = []
        for message in self.messages:
            for block in message.content:
                images = block.content if isinstance(block, ToolResultBlock) else (block,)
                urls.extend(
                    image.source.url
                    for image in images
                    if isinstance(image, ImageBlock) and isinstance(image.source, UrlSource)
                )
        return list(dict.fromkeys(urls))

    def to_conversation(self, fetched_images: Mapping[str, tuple[str, str]] | None = None) -> Conversation:
        fetched = fetched_images or {}
        turns = tuple(_turn(m, f"messages.{i}", fetched) for i, m in enumerate(self.messages))
        tools, dropped = _tools(self.tools or [])
        choice = self.tool_choice
        user_id = self.metadata.user_id if self.metadata else None
        return Conversation(
            model=self.model,
            system="\n".join(block.text for block in self.system if block.text),
            turns=turns,
            tools=tools,
            tool_choice=_tool_choice(choice),
            parallel_tool_calls=not (choice and choice.disable_parallel_tool_use),
            thinking=_thinking(self.thinking, self.output_config),
            stop_sequences=tuple(s for s in self.stop_sequences or [] if s),
            max_tokens=self.max_tokens,
            stream=self.stream,
            conversation_id=conversation_id_from_user_id(user_id) if user_id else None,
            dropped_tools=dropped,
        )


def _turn(message: Message, param: str, fetched: Mapping[str, tuple[str, str]]) -> Turn:
    """A message as a turn. Kiro has no system role, so a mid-conversation system message keeps its place
    as tagged user-side text (history repair merges it with the neighbouring user turn)."""
    if message.role != "system":
        return Turn(message.role, tuple(_parts(message.content, f"{param}.content", fetched)))
    texts: list[str] = []
    for index, block in enumerate(message.content):
        if not isinstance(block, TextBlock):
            raise InvalidRequest(
                f"{param}.content.{index}: a system message may only hold text blocks",
                param=f"{param}.content.{index}",
            )
        texts.append(block.text)
    return Turn("user", (TextPart(f"<system-message>\n{chr(10).join(texts)}\n</system-message>"),))


def parse_anthropic_request(body: object) -> MessagesRequest:
    return parse_body(MessagesRequest, body)


def anthropic_conversation(
    body: object, fetched_images: Mapping[str, tuple[str, str]] | None = None
) -> Conversation:
    """Validate and convert a messages body (any JSON value) in one step."""
    return parse_anthropic_request(body).to_conversation(fetched_images)


def conversation_id_from_user_id(user_id: str) -> str | None:
    """The session uuid in Claude Code's ``metadata.user_id`` (``..._session_<uuid>`` or a JSON object
    with ``session_id``), so one session keeps one Kiro conversationId."""
    candidate: object = None
    try:
        parsed = json.loads(user_id)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        candidate = parsed.get("session_id")
    elif m := _SESSION.search(user_id):
        candidate = m.group(1)
    if not isinstance(candidate, str):
        return None
    try:
        return str(uuid.UUID(candidate))
    except ValueError:
        return None


def _image(block: ImageBlock, param: str, fetched: Mapping[str, tuple[str, str]]) -> ImagePart:
    source = block.source
    match source:
        case Base64Source():
            return image_part(source.media_type, source.data, f"{param}.source")
        case UrlSource():
            if source.url not in fetched:
                raise bad_field(f"{param}.source.url", "the remote image could not be fetched")
            media_type, data = fetched[source.url]
            return image_part(media_type, data, f"{param}.source.url")
        case FileSource():
            raise bad_field(f"{param}.source", "file sources (Files API) are not supported")


def _document_text(block: DocumentBlock, param: str) -> str:
    source = block.source
    match source:
        case PlainTextSource():
            text = source.data
        case ContentSource():
            text = "\n".join(b.text for b in source.content)
        case Base64Source() | UrlSource() | FileSource():
            raise bad_field(f"{param}.source", "only plain-text documents are supported")
    return f"[Document: {block.title}]\n{text}" if block.title else text


def _server_result_text(block: ServerToolResultBlock) -> str:
    lines = [f"[{block.type} ({block.tool_use_id})]"]
    items = block.content if isinstance(block.content, list) else [block.content]
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("url"), str):
            lines.append(f"- {item.get('title') or item['url']}: {item['url']}")
        elif isinstance(item, dict) and isinstance(item.get("error_code"), str):
            lines.append(f"error: {item['error_code']}")
    return "\n".join(lines)


def _tool_result(
    block: ToolResultBlock, param: str, fetched: Mapping[str, tuple[str, str]]
) -> ToolResultPart:
    texts: list[str] = []
    images: list[ImagePart] = []
    for index, item in enumerate(block.content):
        match item:
            case TextBlock():
                texts.append(item.text)
            case ImageBlock():
                images.append(_image(item, f"{param}.content.{index}", fetched))
            case DocumentBlock():
                texts.append(_document_text(item, f"{param}.content.{index}"))
    return ToolResultPart(block.tool_use_id, "\n".join(texts), tuple(images), block.is_error)


def _parts(blocks: list[ContentBlock], param: str, fetched: Mapping[str, tuple[str, str]]) -> list[Part]:
    parts: list[Part] = []
    for index, block in enumerate(blocks):
        at = f"{param}.{index}"
        match block:
            case TextBlock():
                parts.append(TextPart(block.text))
            case ImageBlock():
                parts.append(_image(block, at, fetched))
            case DocumentBlock():
                parts.append(TextPart(_document_text(block, at)))
            case ServerToolUseBlock():
                arguments = json.dumps(block.input, ensure_ascii=False)
                parts.append(TextPart(f"[Server tool {block.name} ({block.id})]\n{arguments}"))
            case ToolUseBlock():
                parts.append(ToolUsePart(block.id, block.name, block.input))
            case ToolResultBlock():
                parts.append(_tool_result(block, at, fetched))
            case ServerToolResultBlock():
                parts.append(TextPart(_server_result_text(block)))
            case ThinkingBlock():
                parts.append(ThinkingPart(block.thinking))
            case RedactedThinkingBlock():
                pass
            case _:
                assert_never(block)
    return parts


def _tools(definitions: list[ToolDefinition]) -> tuple[tuple[Tool, ...], tuple[str, ...]]:
    tools: list[Tool] = []
    dropped: list[str] = []
    for index, definition in enumerate(definitions):
        if definition.type not in (None, "custom"):
            dropped.append(definition.name or definition.type)
            continue
        if not definition.name:
            raise bad_field(f"tools.{index}.name", "a tool needs a name")
        schema = definition.input_schema if isinstance(definition.input_schema, dict) else {}
        tools.append(Tool(definition.name, definition.description or "", schema))
    return tuple(tools), tuple(dropped)


def _tool_choice(choice: ToolChoiceBody | None) -> ToolChoice:
    if choice is None:
        return ToolChoiceAuto()
    match choice.type:
        case "auto":
            return ToolChoiceAuto()
        case "any":
            return ToolChoiceAny()
        case "none":
            return ToolChoiceNone()
        case "tool":
            if not choice.name:
                raise bad_field("tool_choice.name", "tool_choice of type 'tool' needs a name")
            return ToolChoiceTool(choice.name)


def _thinking(thinking: ThinkingBody | None, output: OutputConfig | None) -> ThinkingRequest:
    effort = output.effort if output else None
    match thinking:
        case ThinkingEnabledBody():
            return ThinkingEnabled(thinking.budget_tokens)
        case ThinkingAdaptiveBody():
            return ThinkingAdaptive(effort or "high")
        case _:
            return ThinkingOff()
