"""OpenAI ``POST /v1/responses`` request bodies -> the neutral :class:`Conversation`.

Honoured: ``model``; ``input`` as a string or items: ``message`` (roles ``user``, ``assistant``,
``system``, ``developer``; content a string or ``input_text``, ``input_image`` (data URL or an http(s)
URL the gateway fetched), ``output_text``, ``refusal`` parts), ``function_call`` /
``function_call_output``, ``custom_tool_call`` / ``custom_tool_call_output``, ``local_shell_call`` /
``local_shell_call_output``, ``reasoning`` (summary and content text folded back as thinking; an
``encrypted_content`` this gateway wrote carries the full text back), ``item_reference`` (resolved from the
stored responses before conversion); ``instructions`` (with ``system``/``developer`` messages, the system
text); ``tools``: ``function`` (``strict`` accepted), ``custom`` (freeform: one string parameter ``input``,
its grammar in the description), ``local_shell`` (a function ``local_shell``), ``namespace`` (its
functions flattened as ``{namespace}__{name}`` and mapped back), hosted tools (``web_search``,
``web_search_preview``, ``file_search``, ``mcp``, ...) dropped and reported; ``tool_choice`` (``auto``,
``none``, ``required``, a named function or custom tool, ``allowed_tools``, a hosted tool type);
``parallel_tool_calls``; ``max_output_tokens``; ``reasoning.effort`` (like chat's ``reasoning_effort``)
and ``reasoning.summary``; ``text.format`` (``json_object`` and ``json_schema`` through a forced tool
whose arguments become the answer, checked against the schema); ``include``
(``reasoning.encrypted_content``); ``store``; ``previous_response_id``; ``truncation``; ``stream``;
``prompt_cache_key`` (a session uuid there keeps one Kiro conversationId).

Accepted and ignored: ``temperature``, ``top_p``, ``top_logprobs``, ``text.verbosity``, ``metadata``,
``user``, ``safety_identifier``, ``service_tier``, ``client_metadata``, ``background``, ``conversation``,
``prompt``, ``stream_options``, ``max_tool_calls``, item ``id`` and ``status``, part ``detail``,
``annotations`` and ``logprobs``, and any unknown field or input item type.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, Tag, TypeAdapter

from . import jsonsafe
from .conversation import (
    Conversation,
    ImagePart,
    Part,
    RequestModel,
    Role,
    TextPart,
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
from .openai_request import effort_thinking

#: Separator of a namespace and its function in the flattened tool names Kiro sees.
NAMESPACE_SEPARATOR = "__"
LOCAL_SHELL = "local_shell"
#: The forced tool of ``text.format: json_object`` (``json_schema`` uses the format's own name).
JSON_FORMAT_TOOL = "json_response"
#: Prefix of the ``encrypted_content`` this gateway writes on reasoning items (base64 JSON of the text).
ENCRYPTED_PREFIX = "kiro-tray:1:"
SUMMARY_MODES = ("auto", "concise", "detailed")
CUSTOM_TOOL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"input": {"type": "string", "description": "The raw input for the tool, verbatim."}},
    "required": ["input"],
}
LOCAL_SHELL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "command": {
            "type": "array",
            "items": {"type": "string"},
            "description": "The command and arguments.",
        },
        "working_directory": {"type": "string", "description": "Directory to run the command in."},
        "timeout_ms": {"type": "integer", "description": "Timeout in milliseconds."},
        "env": {"type": "object", "description": "Extra environment variables."},
    },
    "required": ["command"],
}
LOCAL_SHELL_DESCRIPTION = "Runs a shell command on the user's machine and returns its output."


def _parts_from_string(value: Any) -> Any:
    if value is None:
        return []
    if isinstance(value, str):
        return [{"type": "input_text", "text": value}]
    return value


def _input_from_string(value: Any) -> Any:
    if value is None:
        return []
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    return value


def _url_string(value: Any) -> Any:
    return value.get("url") if isinstance(value, dict) else value


# --- content parts -----------------------------------------------------------------------------------


class InputText(RequestModel):
    type: Literal["input_text"]
    text: str


class OutputText(RequestModel):
    type: Literal["output_text"]
    text: str


class Refusal(RequestModel):
    type: Literal["refusal"]
    refusal: str


class InputImage(RequestModel):
    type: Literal["input_image"]
    image_url: Annotated[str | None, BeforeValidator(_url_string)] = None
    file_id: str | None = None


class InputFile(RequestModel):
    type: Literal["input_file"]
    filename: str | None = None
    file_data: str | None = None


ContentPart = Annotated[
    Annotated[InputText, Tag("@input_text")]
    | Annotated[OutputText, Tag("@output_text")]
    | Annotated[Refusal, Tag("@refusal")]
    | Annotated[InputImage, Tag("@input_image")]
    | Annotated[InputFile, Tag("@input_file")],
    block_discriminator(("input_text", "input_image", "input_file", "output_text", "refusal")),
]
Content = Annotated[list[ContentPart], BeforeValidator(_parts_from_string)]


# --- input items -------------------------------------------------------------------------------------


class MessageItem(RequestModel):
    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: Content = Field(default_factory=list)
    id: str | None = None


class FunctionCallItem(RequestModel):
    type: Literal["function_call"]
    call_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    arguments: str = ""
    namespace: str | None = None
    id: str | None = None


class CustomToolCallItem(RequestModel):
    type: Literal["custom_tool_call"]
    call_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    input: str = ""
    namespace: str | None = None
    id: str | None = None


class ShellAction(RequestModel):
    command: list[str] = Field(default_factory=list)
    working_directory: str | None = None
    timeout_ms: int | None = None
    env: dict[str, str] | None = None


class LocalShellCallItem(RequestModel):
    type: Literal["local_shell_call"]
    call_id: str = Field(min_length=1)
    action: ShellAction
    id: str | None = None


ToolOutput = Annotated[list[ContentPart] | str, Field(union_mode="left_to_right")]


class FunctionCallOutputItem(RequestModel):
    type: Literal["function_call_output", "custom_tool_call_output"]
    call_id: str = Field(min_length=1)
    output: ToolOutput = ""
    id: str | None = None


class LocalShellCallOutputItem(RequestModel):
    type: Literal["local_shell_call_output"]
    id: str = Field(min_length=1)  # OpenAI names the answered call by ``id`` here
    call_id: str | None = None
    output: str = ""


class SummaryText(RequestModel):
    text: str = ""


class ReasoningItem(RequestModel):
    type: Literal["reasoning"]
    summary: list[SummaryText] = Field(default_factory=list)
    content: list[SummaryText] | None = None
    encrypted_content: str | None = None
    id: str | None = None


class ItemReference(RequestModel):
    type: Literal["item_reference"]
    id: str = Field(min_length=1)


KNOWN_ITEMS = (
    "message",
    "function_call",
    "function_call_output",
    "custom_tool_call",
    "custom_tool_call_output",
    "local_shell_call",
    "local_shell_call_output",
    "reasoning",
    "item_reference",
)


class OtherItem(RequestModel):
    """An input item type the gateway does not know (hosted tool calls, ...): accepted and skipped."""

    type: Annotated[
        str, Field(json_schema_extra={"not": {"enum": [*KNOWN_ITEMS, "custom_tool_call_output"]}})
    ]


def _item_tag(value: Any) -> str:
    if not isinstance(value, dict):
        return "@message"
    kind = value.get("type", "message" if "role" in value else None)
    if kind == "custom_tool_call_output":
        kind = "function_call_output"
    return f"@{kind}" if kind in KNOWN_ITEMS else ("@other" if isinstance(kind, str) else "@message")


InputItem = Annotated[
    Annotated[MessageItem, Tag("@message")]
    | Annotated[FunctionCallItem, Tag("@function_call")]
    | Annotated[FunctionCallOutputItem, Tag("@function_call_output")]
    | Annotated[CustomToolCallItem, Tag("@custom_tool_call")]
    | Annotated[LocalShellCallItem, Tag("@local_shell_call")]
    | Annotated[LocalShellCallOutputItem, Tag("@local_shell_call_output")]
    | Annotated[ReasoningItem, Tag("@reasoning")]
    | Annotated[ItemReference, Tag("@item_reference")]
    | Annotated[OtherItem, Tag("@other")],
    block_discriminator(KNOWN_ITEMS, _item_tag),
]
INPUT_ITEMS: TypeAdapter[list[InputItem]] = TypeAdapter(list[InputItem])


# --- tools -------------------------------------------------------------------------------------------


class FunctionTool(RequestModel):
    type: str
    name: str | None = None
    description: str | None = None
    parameters: Any = None
    strict: bool | None = None
    format: Any = None
    tools: list[FunctionTool] | None = None  # namespace members


class ReasoningConfig(RequestModel):
    effort: str | None = None
    summary: str | None = None
    generate_summary: str | None = None


class TextFormat(RequestModel):
    type: Literal["text", "json_object", "json_schema"] = "text"
    name: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    description: str | None = None
    strict: bool | None = None


class TextConfig(RequestModel):
    format: TextFormat | None = None
    verbosity: str | None = None


class ResponsesRequest(RequestModel):
    model: str = Field(min_length=1)
    input: Annotated[list[InputItem], BeforeValidator(_input_from_string)] = Field(default_factory=list)
    instructions: str | None = None
    tools: list[FunctionTool] | None = None
    tool_choice: Any = None  # checked by _tool_choice for a precise error
    parallel_tool_calls: bool | None = None
    max_output_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = None
    top_p: float | None = None
    reasoning: ReasoningConfig | None = None
    text: TextConfig | None = None
    include: list[str] | None = None
    store: bool | None = None
    stream: bool = False
    previous_response_id: str | None = None
    metadata: dict[str, Any] | None = None
    user: str | None = None
    prompt_cache_key: str | None = None
    safety_identifier: str | None = None
    service_tier: str | None = None
    truncation: Literal["auto", "disabled"] | None = None

    def image_urls(self) -> list[str]:
        """The http(s) image URLs, in order, without duplicates (the gateway fetches them first)."""
        urls: list[str] = []
        for item in self.input:
            parts: list[Any] = []
            if isinstance(item, MessageItem):
                parts = item.content
            elif isinstance(item, FunctionCallOutputItem) and isinstance(item.output, list):
                parts = item.output
            for part in parts:
                url = part.image_url if isinstance(part, InputImage) else None
                if url and url.startswith(("http://", "https://")) and url not in urls:
                    urls.append(url)
        return urls

    @property
    def stores(self) -> bool:
        """``store`` defaults to true, as at OpenAI."""
        return self.store is not False

    def references(self) -> list[str]:
        """The ids of the ``item_reference`` items, to resolve from the store."""
        return [item.id for item in self.input if isinstance(item, ItemReference)]

    def resolved(self, history: list[InputItem], items: Mapping[str, InputItem]) -> ResponsesRequest:
        """This request with ``history`` (a previous response's conversation) in front and each
        ``item_reference`` replaced by the stored item it names."""
        own = [items.get(item.id, item) if isinstance(item, ItemReference) else item for item in self.input]
        return self.model_copy(update={"input": [*history, *own]})

    def to_conversation(self, fetched_images: Mapping[str, tuple[str, str]] | None = None) -> Conversation:
        fetched = fetched_images or {}
        system: list[str] = [self.instructions] if self.instructions else []
        turns = _TurnList()
        for index, item in enumerate(self.input):
            param = f"input.{index}"
            match item:
                case MessageItem(role="system" | "developer"):
                    system.append(_plain_text(item.content, f"{param}.content"))
                case MessageItem(role="user"):
                    turns.add("user", _user_parts(item.content, f"{param}.content", fetched))
                case MessageItem():
                    turns.add("assistant", _assistant_parts(item.content, f"{param}.content"))
                case FunctionCallItem():
                    name = qualified(item.namespace, item.name)
                    turns.add("assistant", [ToolUsePart(item.call_id, name, _arguments(item.arguments))])
                case CustomToolCallItem():
                    name = qualified(item.namespace, item.name)
                    turns.add("assistant", [ToolUsePart(item.call_id, name, {"input": item.input})])
                case LocalShellCallItem():
                    action = item.action.model_dump(exclude_none=True)
                    turns.add("assistant", [ToolUsePart(item.call_id, LOCAL_SHELL, action)])
                case FunctionCallOutputItem():
                    turns.add("user", [_tool_result(item.call_id, item.output, f"{param}.output", fetched)])
                case LocalShellCallOutputItem():
                    turns.add("user", [ToolResultPart(item.call_id or item.id, item.output)])
                case ReasoningItem():
                    if text := reasoning_text(item):
                        turns.add("assistant", [ThinkingPart(text)])
                case ItemReference():
                    raise bad_field(f"{param}.id", f"no stored item has the id {jsonsafe.clip(item.id)!r}")
                case OtherItem():
                    pass
        tools, dropped, outputs = _tools(self.tools or [])
        choice = _tool_choice(self.tool_choice, outputs)
        text_format = self.text.format if self.text and self.text.format else TextFormat()
        if text_format.type != "text":
            tools, choice, note = _format_tool(text_format, tools, choice)
            system.append(note)
        return Conversation(
            model=self.model,
            system="\n\n".join(s for s in system if s),
            turns=turns.done(),
            tools=tools,
            tool_choice=choice,
            parallel_tool_calls=self.parallel_tool_calls is not False,
            thinking=self._thinking(),
            max_tokens=self.max_output_tokens,
            stream=self.stream,
            conversation_id=_session_id(self.prompt_cache_key),
            dropped_tools=dropped,
            trim_history=None if self.truncation is None else self.truncation == "auto",
        )

    def _thinking(self) -> ThinkingRequest:
        return effort_thinking(self.reasoning.effort if self.reasoning else None, "reasoning.effort")

    def shape(self, response_id: str | None = None, created_at: int | None = None) -> ResponseShape:
        """What the stream builder needs to answer this request in the Responses format."""
        _, _, outputs = _tools(self.tools or [])
        text_format = self.text.format if self.text and self.text.format else TextFormat()
        format_tool: str | None = None
        if text_format.type != "text":
            format_tool = _format_name(text_format, outputs)
        reasoning = self.reasoning or ReasoningConfig()
        summary = reasoning.summary or reasoning.generate_summary
        return ResponseShape(
            response_id=response_id or new_id("resp"),
            created_at=int(time.time()) if created_at is None else created_at,
            tools=outputs,
            format_tool=format_tool,
            format_schema=text_format.schema_ if text_format.type == "json_schema" else None,
            summary=summary in SUMMARY_MODES,
            encrypted_reasoning="reasoning.encrypted_content" in (self.include or []),
            echo=self._echo(),
        )

    def _echo(self) -> dict[str, Any]:
        """The request fields a response object repeats."""
        reasoning = self.reasoning or ReasoningConfig()
        text = self.text or TextConfig()
        text_format = text.format.model_dump(by_alias=True, exclude_none=True) if text.format else None
        return {
            "instructions": self.instructions,
            "max_output_tokens": self.max_output_tokens,
            "metadata": self.metadata or {},
            "model": self.model,
            "parallel_tool_calls": self.parallel_tool_calls is not False,
            "previous_response_id": self.previous_response_id,
            "prompt_cache_key": self.prompt_cache_key,
            "reasoning": {"effort": reasoning.effort, "summary": reasoning.summary},
            "safety_identifier": self.safety_identifier,
            "service_tier": self.service_tier or "default",
            "store": self.stores,
            "temperature": self.temperature,
            "text": {"format": text_format or {"type": "text"}, "verbosity": text.verbosity or "medium"},
            "tool_choice": self.tool_choice if self.tool_choice is not None else "auto",
            "tools": [t.model_dump(exclude_none=True) for t in self.tools or []],
            "top_p": self.top_p,
            "truncation": self.truncation or "auto",
            "user": self.user,
        }


def parse_responses_request(body: object) -> ResponsesRequest:
    return parse_body(ResponsesRequest, body)


def parse_items(items: list[Any]) -> list[InputItem]:
    """Stored items (JSON) back into input items."""
    return INPUT_ITEMS.validate_python(items)


def new_id(prefix: str) -> str:
    """An id shaped like OpenAI's (``resp_…``, ``msg_…``, ``fc_…``, ``rs_…``)."""
    return f"{prefix}_{uuid.uuid4().hex}{uuid.uuid4().hex[:16]}"


# --- what the builder needs --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutputTool:
    """How a call of one declared tool goes back to the client."""

    kind: Literal["function", "custom", "local_shell"]
    name: str  # the name the client declared (without its namespace)
    namespace: str | None = None


@dataclass(frozen=True, slots=True)
class ResponseShape:
    """The Responses-specific facts a stream builder needs beyond :class:`TurnParams`."""

    response_id: str
    created_at: int
    tools: Mapping[str, OutputTool] = field(default_factory=dict)  # flattened name -> output form
    format_tool: str | None = None  # the forced tool whose arguments are the answer text
    format_schema: Mapping[str, Any] | None = None  # checked against that answer
    summary: bool = False  # reasoning summaries asked for
    encrypted_reasoning: bool = False  # reasoning.encrypted_content asked for
    echo: Mapping[str, Any] = field(default_factory=dict)  # request fields the response repeats


def qualified(namespace: str | None, name: str) -> str:
    return f"{namespace}{NAMESPACE_SEPARATOR}{name}" if namespace else name


def encrypt_reasoning(text: str, signature: str | None) -> str:
    """``encrypted_content`` for a reasoning item: not encrypted, only opaque, so the text comes back."""
    data = json.dumps({"text": text, "signature": signature}, ensure_ascii=False).encode()
    return ENCRYPTED_PREFIX + base64.b64encode(data).decode()


def reasoning_text(item: ReasoningItem) -> str:
    """The text a reasoning item carries: this gateway's own ``encrypted_content`` (the full reasoning),
    else its content or summary text. Foreign encrypted content means nothing to Kiro and is ignored."""
    encrypted = item.encrypted_content or ""
    if encrypted.startswith(ENCRYPTED_PREFIX):
        try:
            value = json.loads(base64.b64decode(encrypted[len(ENCRYPTED_PREFIX) :], validate=True))
        except (binascii.Error, ValueError):
            value = None
        if isinstance(value, dict) and isinstance(value.get("text"), str) and value["text"]:
            return str(value["text"])
    texts = [part.text for part in (item.content or item.summary) if part.text]
    return "\n\n".join(texts)


# --- conversion helpers ------------------------------------------------------------------------------


class _TurnList:
    """Turns in order; consecutive items of one role share a turn (a call and its text, many results)."""

    def __init__(self) -> None:
        self._turns: list[tuple[Role, list[Part]]] = []

    def add(self, role: Role, parts: list[Part]) -> None:
        if self._turns and self._turns[-1][0] == role:
            self._turns[-1][1].extend(parts)
        else:
            self._turns.append((role, list(parts)))

    def done(self) -> tuple[Turn, ...]:
        return tuple(Turn(role, tuple(parts)) for role, parts in self._turns)


def _plain_text(content: list[Any], param: str) -> str:
    texts: list[str] = []
    for index, part in enumerate(content):
        if not isinstance(part, (InputText, OutputText)):
            raise bad_field(f"{param}.{index}", "only text is allowed here")
        texts.append(part.text)
    return "\n".join(texts)


def _image(part: InputImage, param: str, fetched: Mapping[str, tuple[str, str]]) -> ImagePart:
    url = part.image_url
    if not url:
        raise bad_field(f"{param}.image_url", "images need an image_url (file ids are not supported)")
    if url.startswith("data:"):
        media_type, data = split_data_url(url, f"{param}.image_url")
        return image_part(media_type, data, f"{param}.image_url")
    if url not in fetched:
        raise bad_field(f"{param}.image_url", "the remote image could not be fetched")
    media_type, data = fetched[url]
    return image_part(media_type, data, f"{param}.image_url")


def _file_text(part: InputFile, param: str) -> str:
    if part.file_data and not part.file_data.startswith("data:"):
        return f"<file name={part.filename or 'file'!r}>\n{part.file_data}\n</file>"
    raise bad_field(param, "only input_file parts with plain-text file_data are supported")


def _user_parts(content: list[Any], param: str, fetched: Mapping[str, tuple[str, str]]) -> list[Part]:
    parts: list[Part] = []
    for index, part in enumerate(content):
        match part:
            case InputText() | OutputText():
                parts.append(TextPart(part.text))
            case InputImage():
                parts.append(_image(part, f"{param}.{index}", fetched))
            case InputFile():
                parts.append(TextPart(_file_text(part, f"{param}.{index}")))
            case Refusal():
                raise bad_field(f"{param}.{index}", "refusal parts belong to assistant messages")
    return parts


def _assistant_parts(content: list[Any], param: str) -> list[Part]:
    parts: list[Part] = []
    for index, part in enumerate(content):
        match part:
            case InputText() | OutputText():
                parts.append(TextPart(part.text))
            case Refusal():
                parts.append(TextPart(part.refusal))
            case _:
                raise bad_field(f"{param}.{index}", "assistant messages hold only text and refusals")
    return parts


def _tool_result(
    call_id: str, output: list[Any] | str, param: str, fetched: Mapping[str, tuple[str, str]]
) -> ToolResultPart:
    if isinstance(output, str):
        return ToolResultPart(call_id, output)
    texts: list[str] = []
    images: list[ImagePart] = []
    for part in _user_parts(output, param, fetched):
        if isinstance(part, ImagePart):
            images.append(part)
        elif isinstance(part, TextPart):
            texts.append(part.text)
    return ToolResultPart(call_id, "\n".join(texts), tuple(images))


def _arguments(raw: str) -> dict[str, Any]:
    """Call arguments as an object; text that is not a JSON object (an earlier truncated call) is kept
    as ``{"raw_arguments": text}`` so the conversation stays usable."""
    if not raw.strip():
        return {}
    try:
        value = jsonsafe.loads(raw)
    except ValueError:
        return {"raw_arguments": raw}
    return value if isinstance(value, dict) else {"raw_arguments": raw}


def _custom_description(tool: FunctionTool) -> str:
    description = tool.description or ""
    fmt = tool.format if isinstance(tool.format, dict) else {}
    if fmt.get("type") == "grammar" and isinstance(fmt.get("definition"), str):
        syntax = fmt.get("syntax", "grammar")
        description += f"\n\nThe `input` must follow this {syntax} grammar:\n{fmt['definition']}"
    return description + "\n\nPass the tool's raw input, verbatim, as the string parameter `input`."


def _function(tool: FunctionTool, param: str, namespace: str | None) -> tuple[Tool, OutputTool]:
    if not tool.name:
        raise bad_field(f"{param}.name", "a function tool needs a name")
    name = qualified(namespace, tool.name)
    schema = tool.parameters if isinstance(tool.parameters, dict) else {}
    return Tool(name, tool.description or "", schema), OutputTool("function", tool.name, namespace)


def _custom(tool: FunctionTool, param: str, namespace: str | None) -> tuple[Tool, OutputTool]:
    if not tool.name:
        raise bad_field(f"{param}.name", "a custom tool needs a name")
    name = qualified(namespace, tool.name)
    return Tool(name, _custom_description(tool), CUSTOM_TOOL_SCHEMA), OutputTool(
        "custom", tool.name, namespace
    )


def _tools(
    definitions: list[FunctionTool],
) -> tuple[tuple[Tool, ...], tuple[str, ...], dict[str, OutputTool]]:
    """Kiro's tools, the dropped hosted tools, and how each declared tool's calls go back."""
    tools: list[Tool] = []
    dropped: list[str] = []
    outputs: dict[str, OutputTool] = {}

    def add(pair: tuple[Tool, OutputTool]) -> None:
        tools.append(pair[0])
        outputs[pair[0].name] = pair[1]

    for index, tool in enumerate(definitions):
        param = f"tools.{index}"
        match tool.type:
            case "function":
                add(_function(tool, param, None))
            case "custom":
                add(_custom(tool, param, None))
            case "local_shell":
                add(
                    (
                        Tool(LOCAL_SHELL, LOCAL_SHELL_DESCRIPTION, LOCAL_SHELL_SCHEMA),
                        OutputTool("local_shell", ""),
                    )
                )
            case "namespace":
                if not tool.name:
                    raise bad_field(f"{param}.name", "a namespace needs a name")
                for inner, member in enumerate(tool.tools or []):
                    inner_param = f"{param}.tools.{inner}"
                    add(
                        _custom(member, inner_param, tool.name)
                        if member.type == "custom"
                        else _function(member, inner_param, tool.name)
                    )
            case _:
                dropped.append(tool.name or tool.type)
    return tuple(tools), tuple(dropped), outputs


def _tool_choice(value: object, outputs: Mapping[str, OutputTool]) -> ToolChoice:
    if value is None or value == "auto":
        return ToolChoiceAuto()
    if value == "none":
        return ToolChoiceNone()
    if value == "required":
        return ToolChoiceAny()
    if isinstance(value, dict):
        kind = value.get("type")
        name = value.get("name")
        if kind in ("function", "custom") and isinstance(name, str) and name:
            namespace = value.get("namespace")
            return ToolChoiceTool(qualified(namespace if isinstance(namespace, str) else None, name))
        if kind == "local_shell" and LOCAL_SHELL in outputs:
            return ToolChoiceTool(LOCAL_SHELL)
        if kind == "allowed_tools":
            return ToolChoiceAny() if value.get("mode") == "required" else ToolChoiceAuto()
        if isinstance(kind, str) and kind:
            return ToolChoiceAuto()  # a hosted tool (web_search, ...): dropped, so nothing to force
    raise bad_field("tool_choice", "expected 'none', 'auto', 'required' or a named function or custom tool")


def _format_name(text_format: TextFormat, outputs: Mapping[str, OutputTool]) -> str:
    base = text_format.name if text_format.type == "json_schema" and text_format.name else JSON_FORMAT_TOOL
    base = re.sub(r"[^A-Za-z0-9_-]", "_", base)[:48] or JSON_FORMAT_TOOL
    return base if base not in outputs else f"{base}_answer"


def _format_tool(
    text_format: TextFormat, tools: tuple[Tool, ...], choice: ToolChoice
) -> tuple[tuple[Tool, ...], ToolChoice, str]:
    """Structured output through a forced tool: the answer is that tool's arguments. With other tools on
    offer the model must call one of them or the answer tool; without them, the answer tool."""
    if text_format.type == "json_schema":
        if text_format.schema_ is None:
            raise bad_field("text.format.schema", "a json_schema format needs a schema")
        schema: dict[str, Any] = text_format.schema_
    else:
        schema = {"type": "object"}
    name = _format_name(text_format, {t.name: OutputTool("function", t.name) for t in tools})
    description = text_format.description or "The final answer, as a JSON object."
    answer = Tool(name, f"Give your final answer by calling this tool. {description}", schema)
    note = (
        f"Give your final answer only by calling the `{name}` tool: its arguments are the answer, "
        "a JSON object. Do not write the answer as text."
    )
    if isinstance(choice, ToolChoiceNone) or not tools:
        return (answer,), ToolChoiceTool(name), note
    return (*tools, answer), (choice if isinstance(choice, ToolChoiceTool) else ToolChoiceAny()), note


def _session_id(key: str | None) -> str | None:
    if not key:
        return None
    try:
        return str(uuid.UUID(key))
    except ValueError:
        return None
