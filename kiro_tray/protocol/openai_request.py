"""OpenAI ``POST /v1/chat/completions`` request bodies -> the neutral :class:`Conversation`.

Honoured: ``model``; ``messages`` with roles ``system``/``developer`` (joined into the system text),
``user`` (string or ``text``/``image_url`` parts; images as ``data:`` URLs, or http(s) URLs the gateway
fetched beforehand, see :func:`remote_image_urls`), ``assistant`` (text/``refusal`` parts, ``tool_calls``,
``reasoning_content`` folded back as thinking), ``tool`` (text and image parts; consecutive tool messages
form one user turn); ``tools`` in the standard ``{type:"function", function:{...}}`` form and Cursor's flat
``{type:"function", name, description, input_schema}`` form (other tool types are dropped and reported);
``tool_choice`` (``none``/``auto``/``required``/named/``allowed_tools``); ``parallel_tool_calls``;
``max_completion_tokens`` (preferred) or ``max_tokens``; ``stop`` (string or list);
``reasoning_effort`` (``none``/``minimal`` off, ``low``/``medium``/``high``/``xhigh`` budgets);
``stream``; ``stream_options.include_usage``; ``n`` (only 1).

Accepted and ignored (Kiro has no equivalent): ``temperature``, ``top_p``, ``frequency_penalty``,
``presence_penalty``, ``logit_bias``, ``logprobs``, ``top_logprobs``, ``seed``, ``user``, ``metadata``,
``store``, ``service_tier``, ``response_format``, ``modalities``, ``audio``, ``prediction``,
``functions``/``function_call`` (legacy), message ``name``, part ``detail``, and any unknown field.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, Tag

from . import jsonsafe
from .conversation import (
    Conversation,
    ImagePart,
    Part,
    RequestModel,
    TextPart,
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
    split_data_url,
)

#: Thinking budgets for ``reasoning_effort``; ``None`` turns thinking off.
REASONING_BUDGETS: Mapping[str, int | None] = MappingProxyType(
    {
        "none": None,
        "minimal": None,
        "low": 4_000,
        "medium": 10_000,
        "high": 20_000,
        "xhigh": 24_576,
    }
)


def _parts_from_string(value: Any) -> Any:
    if value is None:
        return []
    if isinstance(value, str):
        return [{"type": "text", "text": value}]
    return value


def _url_object(value: Any) -> Any:
    return {"url": value} if isinstance(value, str) else value


def _list_from_string(value: Any) -> Any:
    if value is None:
        return []
    return [value] if isinstance(value, str) else value


class TextContent(RequestModel):
    type: Literal["text"]
    text: str


class ImageUrl(RequestModel):
    url: str


class ImageContent(RequestModel):
    type: Literal["image_url"]
    image_url: Annotated[ImageUrl, BeforeValidator(_url_object)]


class RefusalContent(RequestModel):
    type: Literal["refusal"]
    refusal: str


ContentPart = Annotated[
    Annotated[TextContent, Tag("@text")]
    | Annotated[ImageContent, Tag("@image_url")]
    | Annotated[RefusalContent, Tag("@refusal")],
    block_discriminator(("text", "image_url", "refusal")),
]
Content = Annotated[list[ContentPart], BeforeValidator(_parts_from_string)]


class FunctionCall(RequestModel):
    name: str = Field(min_length=1)
    arguments: str | None = None


class ToolCall(RequestModel):
    id: str = Field(min_length=1)
    type: Literal["function"] = "function"
    function: FunctionCall


class Message(RequestModel):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Content = Field(default_factory=list)
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    reasoning_content: str | None = None


class FunctionDefinition(RequestModel):
    name: str = Field(min_length=1)
    description: str | None = None
    parameters: Any = None


class ToolDefinition(RequestModel):
    """Standard (``function`` member) or Cursor's flat form (``name``/``input_schema`` at top level)."""

    type: str = "function"
    function: FunctionDefinition | None = None
    name: str | None = None
    description: str | None = None
    input_schema: Any = None
    parameters: Any = None


class StreamOptions(RequestModel):
    include_usage: bool = False


class ChatCompletionRequest(RequestModel):
    model: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    tools: list[ToolDefinition] | None = None
    tool_choice: Any = None  # checked by _tool_choice for a precise error
    parallel_tool_calls: bool | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stop: Annotated[list[str], BeforeValidator(_list_from_string)] = Field(default_factory=list)
    reasoning_effort: str | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int | None = Field(default=None, ge=1)

    def image_urls(self) -> list[str]:
        """The http(s) image URLs, in order, without duplicates: the gateway fetches these and passes
        them to :meth:`to_conversation` as ``fetched_images``."""
        urls: list[str] = []
        for message in self.messages:
            for part in message.content:
                if isinstance(part, ImageContent):
                    url = part.image_url.url
                    if url.startswith(("http://", "https://")) and url not in urls:
                        urls.append(url)
        return urls

    def to_conversation(self, fetched_images: Mapping[str, tuple[str, str]] | None = None) -> Conversation:
        if self.n is not None and self.n > 1:
            raise bad_field("n", "only one choice per request is supported")
        fetched = fetched_images or {}
        system: list[str] = []
        turns: list[Turn] = []
        previous_role = ""
        for index, message in enumerate(self.messages):
            param = f"messages.{index}"
            match message.role:
                case "system" | "developer":
                    system.append(_plain_text(message.content, param))
                case "user":
                    turns.append(Turn("user", tuple(_user_parts(message.content, param, fetched))))
                case "assistant":
                    turns.append(Turn("assistant", tuple(_assistant_parts(message, param))))
                case "tool":
                    part = _tool_result(message, param, fetched)
                    if previous_role == "tool":
                        turns[-1] = Turn("user", (*turns[-1].parts, part))
                    else:
                        turns.append(Turn("user", (part,)))
            previous_role = message.role
        tools, dropped = _tools(self.tools or [])
        stream_options = self.stream_options or StreamOptions()
        return Conversation(
            model=self.model,
            system="\n\n".join(s for s in system if s),
            turns=tuple(turns),
            tools=tools,
            tool_choice=_tool_choice(self.tool_choice),
            parallel_tool_calls=self.parallel_tool_calls is not False,
            thinking=effort_thinking(self.reasoning_effort),
            stop_sequences=tuple(s for s in self.stop if s),
            max_tokens=self.max_completion_tokens or self.max_tokens,
            stream=self.stream,
            include_usage=self.stream and stream_options.include_usage,
            dropped_tools=dropped,
        )


def parse_openai_request(body: object) -> ChatCompletionRequest:
    return parse_body(ChatCompletionRequest, body)


def openai_conversation(
    body: object, fetched_images: Mapping[str, tuple[str, str]] | None = None
) -> Conversation:
    """Validate and convert a chat-completions body (any JSON value) in one step."""
    return parse_openai_request(body).to_conversation(fetched_images)


def _plain_text(content: list[ContentPart], param: str) -> str:
    texts: list[str] = []
    for index, part in enumerate(content):
        if not isinstance(part, TextContent):
            raise bad_field(f"{param}.content.{index}", "only text is allowed here")
        texts.append(part.text)
    return "\n".join(texts)


def _image(part: ImageContent, param: str, fetched: Mapping[str, tuple[str, str]]) -> ImagePart:
    url = part.image_url.url
    param = f"{param}.image_url.url"
    if url.startswith("data:"):
        media_type, data = split_data_url(url, param)
        return image_part(media_type, data, param)
    if url.startswith(("http://", "https://")):
        if url not in fetched:
            raise bad_field(param, "the remote image could not be fetched")
        media_type, data = fetched[url]
        return image_part(media_type, data, param)
    raise bad_field(param, "images must be data: URLs or http(s) URLs")


def _user_parts(content: list[ContentPart], param: str, fetched: Mapping[str, tuple[str, str]]) -> list[Part]:
    parts: list[Part] = []
    for index, part in enumerate(content):
        match part:
            case TextContent():
                parts.append(TextPart(part.text))
            case ImageContent():
                parts.append(_image(part, f"{param}.content.{index}", fetched))
            case RefusalContent():
                raise bad_field(f"{param}.content.{index}", "refusal parts belong to assistant messages")
    return parts


def _arguments(raw: str | None) -> dict[str, Any]:
    """Tool-call arguments as an object; text that is not a JSON object (an earlier truncated call)
    is kept as ``{"raw_arguments": text}`` so the conversation stays usable."""
    if raw is None or not raw.strip():
        return {}
    try:
        value = jsonsafe.loads(raw)
    except ValueError:
        return {"raw_arguments": raw}
    return value if isinstance(value, dict) else {"raw_arguments": raw}


def _assistant_parts(message: Message, param: str) -> list[Part]:
    parts: list[Part] = []
    if message.reasoning_content:
        parts.append(ThinkingPart(message.reasoning_content))
    for index, part in enumerate(message.content):
        match part:
            case TextContent():
                parts.append(TextPart(part.text))
            case RefusalContent():
                parts.append(TextPart(part.refusal))
            case ImageContent():
                raise bad_field(f"{param}.content.{index}", "assistant messages cannot carry images")
    for call in message.tool_calls or []:
        parts.append(ToolUsePart(call.id, call.function.name, _arguments(call.function.arguments)))
    return parts


def _tool_result(message: Message, param: str, fetched: Mapping[str, tuple[str, str]]) -> ToolResultPart:
    if not message.tool_call_id:
        raise bad_field(f"{param}.tool_call_id", "tool messages need the id of the call they answer")
    texts: list[str] = []
    images: list[ImagePart] = []
    for index, part in enumerate(message.content):
        match part:
            case TextContent():
                texts.append(part.text)
            case ImageContent():
                images.append(_image(part, f"{param}.content.{index}", fetched))
            case RefusalContent():
                raise bad_field(f"{param}.content.{index}", "refusal parts belong to assistant messages")
    return ToolResultPart(message.tool_call_id, "\n".join(texts), tuple(images))


def _tools(definitions: list[ToolDefinition]) -> tuple[tuple[Tool, ...], tuple[str, ...]]:
    tools: list[Tool] = []
    dropped: list[str] = []
    for index, definition in enumerate(definitions):
        if definition.type != "function":
            dropped.append(definition.name or definition.type)
        elif definition.function is not None:
            fn = definition.function
            tools.append(Tool(fn.name, fn.description or "", _schema(fn.parameters)))
        elif definition.name:
            schema = definition.input_schema if definition.input_schema is not None else definition.parameters
            tools.append(Tool(definition.name, definition.description or "", _schema(schema)))
        else:
            raise bad_field(f"tools.{index}.function", "a function tool needs a function with a name")
    return tuple(tools), tuple(dropped)


def _schema(value: Any) -> dict[str, Any]:
    """The raw schema as an object; ``kiro_payload`` sanitises its contents."""
    return value if isinstance(value, dict) else {}


def _tool_choice(value: object) -> ToolChoice:
    if value is None or value == "auto":
        return ToolChoiceAuto()
    if value == "none":
        return ToolChoiceNone()
    if value == "required":
        return ToolChoiceAny()
    if isinstance(value, dict):
        kind = value.get("type")
        function = value.get("function")
        name = function.get("name") if isinstance(function, dict) else value.get("name")
        if kind == "function" and isinstance(name, str) and name:
            return ToolChoiceTool(name)
        if kind == "allowed_tools":
            options = value.get("allowed_tools")
            mode = options.get("mode") if isinstance(options, dict) else value.get("mode")
            return ToolChoiceAny() if mode == "required" else ToolChoiceAuto()
    raise bad_field("tool_choice", "expected 'none', 'auto', 'required' or a named function")


def effort_thinking(effort: str | None, param: str = "reasoning_effort") -> ThinkingRequest:
    """An OpenAI reasoning effort (``reasoning_effort``, Responses ``reasoning.effort``) as thinking."""
    if effort is None:
        return ThinkingOff()
    key = effort.strip().lower()
    if key not in REASONING_BUDGETS:
        raise bad_field(param, f"expected one of: {', '.join(REASONING_BUDGETS)}")
    budget = REASONING_BUDGETS[key]
    return ThinkingOff() if budget is None else ThinkingEnabled(budget)
