"""A small JSON Schema check for structured output (``text.format: json_schema``).

Kiro has no structured output, so the gateway asks for the answer through a forced tool and checks what
comes back against the client's schema. This covers the keywords structured-output schemas use
(``type``, ``properties``, ``required``, ``additionalProperties``, ``items``, ``enum``, ``const``,
``anyOf``/``oneOf``/``allOf``, ``$ref`` to ``#/$defs/...`` or ``#/definitions/...``, string, number and
array bounds); keywords it does not know are accepted. Stdlib only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

_TYPES: Final[dict[str, tuple[type, ...]]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}
_MAX_DEPTH: Final = 64


def _is_type(value: Any, name: str) -> bool:
    if name in ("integer", "number") and isinstance(value, bool):
        return False
    if name == "integer" and isinstance(value, float):
        return value.is_integer()
    kinds = _TYPES.get(name)
    return kinds is None or isinstance(value, kinds)


class _Checker:
    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root

    def _resolve(self, ref: str) -> Mapping[str, Any]:
        node: Any = self.root
        if not ref.startswith("#"):
            return {}
        for part in ref[1:].split("/"):
            if part:
                node = (
                    node.get(part.replace("~1", "/").replace("~0", "~"), {}) if isinstance(node, dict) else {}
                )
        return node if isinstance(node, dict) else {}

    def check(self, value: Any, schema: Any, path: str, depth: int = 0) -> str | None:
        """The first problem of ``value`` against ``schema`` (with its path), or None."""
        if not isinstance(schema, dict) or depth > _MAX_DEPTH:
            return None
        ref = schema.get("$ref")
        if isinstance(ref, str):
            problem = self.check(value, self._resolve(ref), path, depth + 1)
            if problem:
                return problem
        kind = schema.get("type")
        kinds = [kind] if isinstance(kind, str) else kind if isinstance(kind, list) else []
        if kinds and not any(_is_type(value, k) for k in kinds if isinstance(k, str)):
            return f"{path}: expected {' or '.join(map(str, kinds))}"
        if "enum" in schema and isinstance(schema["enum"], list) and value not in schema["enum"]:
            return f"{path}: not one of the allowed values"
        if "const" in schema and value != schema["const"]:
            return f"{path}: must be {schema['const']!r}"
        for key in ("anyOf", "oneOf"):
            options = schema.get(key)
            if (
                isinstance(options, list)
                and options
                and all(self.check(value, option, path, depth + 1) for option in options)
            ):
                return f"{path}: matches none of the {key} alternatives"
        for option in schema.get("allOf") or []:
            problem = self.check(value, option, path, depth + 1)
            if problem:
                return problem
        if isinstance(value, dict):
            return self._object(value, schema, path, depth)
        if isinstance(value, list):
            return self._array(value, schema, path, depth)
        if isinstance(value, str):
            return _string(value, schema, path)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return _number(value, schema, path)
        return None

    def _object(self, value: dict[str, Any], schema: Mapping[str, Any], path: str, depth: int) -> str | None:
        properties = schema.get("properties")
        properties = properties if isinstance(properties, dict) else {}
        for name in schema.get("required") or []:
            if isinstance(name, str) and name not in value:
                return f"{path}: missing required property {name!r}"
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            if name in properties:
                problem = self.check(item, properties[name], f"{path}.{name}", depth + 1)
            elif extra is False:
                return f"{path}: unexpected property {name!r}"
            else:
                problem = self.check(item, extra, f"{path}.{name}", depth + 1)
            if problem:
                return problem
        return None

    def _array(self, value: list[Any], schema: Mapping[str, Any], path: str, depth: int) -> str | None:
        low, high = schema.get("minItems"), schema.get("maxItems")
        if isinstance(low, int) and len(value) < low:
            return f"{path}: fewer than {low} items"
        if isinstance(high, int) and len(value) > high:
            return f"{path}: more than {high} items"
        for index, item in enumerate(value):
            problem = self.check(item, schema.get("items"), f"{path}[{index}]", depth + 1)
            if problem:
                return problem
        return None


def _string(value: str, schema: Mapping[str, Any], path: str) -> str | None:
    low, high, pattern = schema.get("minLength"), schema.get("maxLength"), schema.get("pattern")
    if isinstance(low, int) and len(value) < low:
        return f"{path}: shorter than {low} characters"
    if isinstance(high, int) and len(value) > high:
        return f"{path}: longer than {high} characters"
    if isinstance(pattern, str):
        try:
            if re.search(pattern, value) is None:
                return f"{path}: does not match the pattern"
        except re.error:
            return None
    return None


def _number(value: float, schema: Mapping[str, Any], path: str) -> str | None:
    for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        bound = schema.get(key)
        if not isinstance(bound, (int, float)) or isinstance(bound, bool):
            continue
        broken = {
            "minimum": value < bound,
            "maximum": value > bound,
            "exclusiveMinimum": value <= bound,
            "exclusiveMaximum": value >= bound,
        }[key]
        if broken:
            return f"{path}: violates {key} {bound}"
    return None


def schema_problem(value: Any, schema: Mapping[str, Any]) -> str | None:
    """Why ``value`` does not satisfy ``schema`` (the first problem, with a ``$.path``), or None."""
    return _Checker(schema).check(value, schema, "$")
