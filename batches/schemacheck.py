"""A small JSON Schema checker for the manifest schema, compiled once into closures (pure).

It supports the keywords manifest.schema.json uses: type, const, enum, pattern, minimum,
maximum, required, properties, patternProperties, additionalProperties (false), items and
local ``$ref``. Why not the ``jsonschema`` package: this is ~80 lines, adds no dependency to a
factory install, and checks a million records faster than a general interpreter would.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Check = Callable[[Any, str], None]
_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
}
_KNOWN = {"type", "const", "enum", "pattern", "minimum", "maximum", "required", "properties",
          "patternProperties", "additionalProperties", "items", "$ref", "title", "description",
          "$schema", "$id", "$defs"}


class SchemaViolation(ValueError):
    """A value does not match the schema; the message names the JSON path."""


def compile_schema(schema: dict[str, Any], root: dict[str, Any] | None = None) -> Check:
    """Turn a schema into a function ``check(value, path)`` that raises SchemaViolation."""
    root = root or schema
    unknown = set(schema) - _KNOWN
    if unknown:
        raise ValueError(f"schema keyword(s) not supported: {sorted(unknown)}")
    if "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return compile_schema(target, root)
    checks: list[Check] = [_compile_scalar(schema)]
    if "properties" in schema or "patternProperties" in schema or "required" in schema:
        checks.append(_compile_object(schema, root))
    if "items" in schema:
        item = compile_schema(schema["items"], root)

        def items(value: Any, path: str) -> None:
            if isinstance(value, list):
                for i, element in enumerate(value):
                    item(element, f"{path}[{i}]")
        checks.append(items)
    checks = [c for c in checks if c is not _nothing]
    if len(checks) == 1:
        return checks[0]

    def all_of(value: Any, path: str) -> None:
        for check in checks:
            check(value, path)
    return all_of


def _nothing(value: Any, path: str) -> None:
    return None


def _compile_scalar(schema: dict[str, Any]) -> Check:
    types = schema.get("type")
    tests = [_TYPES[t] for t in ([types] if isinstance(types, str) else types or [])]
    has_const, const = "const" in schema, schema.get("const")
    enum = schema.get("enum")
    pattern = re.compile(schema["pattern"]) if "pattern" in schema else None
    low, high = schema.get("minimum"), schema.get("maximum")
    if not (tests or has_const or enum is not None or pattern or low is not None or high is not None):
        return _nothing

    def scalar(value: Any, path: str) -> None:
        if tests and not any(test(value) for test in tests):
            raise SchemaViolation(f"{path}: expected {types}, got {type(value).__name__}")
        if has_const and (value != const or type(value) is not type(const)):
            raise SchemaViolation(f"{path}: must be {const!r}")
        if enum is not None and value not in enum:
            raise SchemaViolation(f"{path}: {value!r} is not one of {enum}")
        if pattern is not None and isinstance(value, str) and not pattern.search(value):
            raise SchemaViolation(f"{path}: {value!r} does not match {pattern.pattern}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if (low is not None and value < low) or (high is not None and value > high):
                raise SchemaViolation(f"{path}: {value} is outside {low}..{high}")
    return scalar


def _compile_object(schema: dict[str, Any], root: dict[str, Any]) -> Check:
    required = tuple(schema.get("required", ()))
    properties = {k: compile_schema(v, root) for k, v in schema.get("properties", {}).items()}
    patterns = [(re.compile(k), compile_schema(v, root)) for k, v in schema.get("patternProperties", {}).items()]
    closed = schema.get("additionalProperties", True) is False

    def obj(value: Any, path: str) -> None:
        if not isinstance(value, dict):
            return
        for name in required:
            if name not in value:
                raise SchemaViolation(f"{path}: missing {name!r}")
        for name, item in value.items():
            check = properties.get(name)
            if check is not None:
                check(item, f"{path}.{name}")
                continue
            for regex, pattern_check in patterns:
                if regex.search(name):
                    pattern_check(item, f"{path}.{name}")
                    break
            else:
                if closed:
                    raise SchemaViolation(f"{path}: unexpected field {name!r}")
    return obj
