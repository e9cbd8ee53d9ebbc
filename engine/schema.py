"""JSON Schemas (Draft 2020-12) of definition kinds, and schema errors as positioned diagnostics.

Validation is two-stage, as Kestra and n8n do it: the file against its kind's core schema, then
each item at a `Dispatch` point against the schema of *its* type alone (common keys + the plugin
type's `options_schema`), so an analyst sees "unknown key 'lable' (did you mean 'label'?)" rather
than a wall of `oneOf` failures. `export_schema` emits the same rules as `if/then` chains for
editors (`docket schema --out DIR`).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Iterable

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from engine.errors import Diagnostics, did_you_mean
from engine.kinds import DefinitionKind, Dispatch, walk_dispatch
from engine.registry import Registry
from engine.types import YamlPath
from engine.yamlsource import YAML11_BOOLEANS, Document

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

LABEL_SCHEMA: dict[str, Any] = {
    "description": "A text, or a map of locale to text: {zh-CN: 受理, en: Accept}",
    "anyOf": [
        {"type": "string"},
        {"type": "object", "additionalProperties": {"type": "string"}, "minProperties": 1},
    ],
}
"""A label: plain text or a map of locale -> text. Reused by every kind."""

NAME_PATTERN = "^[a-z][a-z0-9_]{0,50}$"
"""Identifiers analysts choose (form, field, node names): lower snake case."""

_TYPE_NAMES = {
    "string": "text", "integer": "a whole number", "number": "a number", "boolean": "true or false",
    "object": "a mapping (key: value lines)", "array": "a list", "null": "nothing",
}


def item_schema(dispatch: Dispatch, plugin: Any) -> dict[str, Any]:
    """The schema of one item at a dispatch point: common keys + the plugin type's options."""
    common = dispatch.common_schema
    options = getattr(plugin, "options_schema", None) or {}
    merged: dict[str, Any] = {k: v for k, v in options.items() if k not in ("properties", "required")}
    merged["type"] = "object"
    merged["properties"] = {**common.get("properties", {}), **options.get("properties", {})}
    merged["required"] = sorted(set(common.get("required", [])) | set(options.get("required", [])))
    merged["additionalProperties"] = False
    return merged


class SchemaChecker:
    """Validates documents of each kind; validators are built once and reused."""

    def __init__(self, registry: Registry):
        self.registry = registry
        self._validators: dict[Any, Draft202012Validator] = {}

    def _validator(self, key: Any, schema: dict[str, Any]) -> Draft202012Validator:
        validator = self._validators.get(key)
        if validator is None:
            validator = Draft202012Validator(schema)
            self._validators[key] = validator
        return validator

    def check(self, doc: Document, kind: DefinitionKind, diags: Diagnostics) -> bool:
        """Validate `doc` as a `kind` and report every problem.

        True when the document can still be built: no problems, or only unknown plugin types
        (the kind's build skips those items, so their neighbours are still cross-checked and
        one typo does not hide the other problems of the file).
        """
        before = len(diags.errors)
        unknown_types = 0
        core = self._validator(("kind", kind.name), kind.options_schema)
        report_errors(core.iter_errors(doc.data), doc, (), diags)
        for dispatch in kind.dispatch:
            kind_registry = getattr(self.registry, dispatch.registry_kind)
            for path, item in walk_dispatch(doc.data, dispatch.path):
                if not isinstance(item, dict):
                    continue  # the core schema has reported it
                type_name = item.get(dispatch.discriminator)
                if not isinstance(type_name, str):
                    continue
                plugin = kind_registry.get(type_name)
                if plugin is None:
                    hint = kind_registry.hint(type_name) or (
                        "known types: " + ", ".join(kind_registry.names()))
                    diags.error(f"unknown {kind_registry.kind} '{type_name}'",
                                doc.source_map.value(path + (dispatch.discriminator,)),
                                code="unknown-type", hint=hint,
                                yaml_path=path + (dispatch.discriminator,))
                    unknown_types += 1
                    continue
                key = (dispatch.path, dispatch.registry_kind, kind_registry.canonical(type_name))
                validator = self._validator(key, item_schema(dispatch, plugin))
                report_errors(validator.iter_errors(item), doc, path, diags)
        return len(diags.errors) - before == unknown_types


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "nothing"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the text '{shown}'"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _expected(types: Any) -> str:
    if isinstance(types, str):
        types = [types]
    return " or ".join(_TYPE_NAMES.get(t, t) for t in types)


def report_errors(errors: Iterable[ValidationError], doc: Document, base: YamlPath,
                  diags: Diagnostics) -> None:
    """Turn jsonschema errors into positioned diagnostics (one place does this)."""
    for error in errors:
        for path, at_key, message, hint in _translate(error):
            full = base + path
            span = doc.source_map.key(full) if at_key else doc.source_map.value(full)
            if not at_key and "type" == error.validator and doc.source_map.is_plain(full):
                hint = hint or _coercion_hint(error)
            diags.error(message, span, code=f"schema-{error.validator}", hint=hint,
                        yaml_path=full)


def _coercion_hint(error: ValidationError) -> str | None:
    value, expected = error.instance, error.validator_value
    expected = [expected] if isinstance(expected, str) else list(expected)
    if "boolean" in expected and isinstance(value, str) and value.lower() in YAML11_BOOLEANS:
        return f"Docket reads only true and false as yes/no values; write {'true' if value.lower() in ('yes', 'on', 'y') else 'false'}"
    if "string" in expected and not isinstance(value, (str, dict, list)):
        return "put the value in quotes to keep it as text, e.g. '0755'"
    return None


def _translate(error: ValidationError) -> list[tuple[YamlPath, bool, str, str | None]]:
    """(path, at_key, message, hint) for one jsonschema error, in an analyst's words."""
    path: YamlPath = tuple(error.absolute_path)
    keyword = error.validator
    instance = error.instance
    if keyword == "additionalProperties" and isinstance(instance, dict):
        allowed = set(error.schema.get("properties", {}))
        patterns = error.schema.get("patternProperties", {})
        out = []
        import re

        for key in instance:
            if key in allowed or any(re.search(p, key) for p in patterns):
                continue
            hint = did_you_mean(key, allowed) or (
                "allowed keys: " + ", ".join(sorted(allowed)) if allowed else None)
            out.append((path + (key,), True, f"unknown key '{key}'", hint))
        return out or [(path, False, error.message, None)]
    if keyword == "required" and isinstance(instance, dict):
        missing = [k for k in error.validator_value if k not in instance]
        return [(path, True, f"missing required key '{k}'", None) for k in missing]
    if keyword == "enum":
        options = [str(o) for o in error.validator_value]
        hint = did_you_mean(str(instance), options) or "allowed: " + ", ".join(options)
        return [(path, False, f"{_describe(instance)} is not an allowed value", hint)]
    if keyword == "const":
        return [(path, False, f"expected '{error.validator_value}', got {_describe(instance)}", None)]
    if keyword == "type":
        return [(path, False, f"expected {_expected(error.validator_value)}, got {_describe(instance)}", None)]
    if keyword == "pattern":
        if error.validator_value == NAME_PATTERN:
            return [(path, False, f"{_describe(instance)} is not a valid name",
                     "names use lower-case letters, digits and _, starting with a letter")]
        return [(path, False, f"{_describe(instance)} does not match the pattern {error.validator_value}", None)]
    if keyword == "propertyNames" and error.context:
        inner = best_match(error.context)
        bad = inner.instance
        return [(path + (bad,), True, f"'{bad}' is not a valid name here",
                 "names use lower-case letters, digits and _, starting with a letter")]
    if keyword in ("anyOf", "oneOf") and error.context:
        if error.schema is LABEL_SCHEMA or error.schema.get("description") == LABEL_SCHEMA["description"]:
            return [(path, False, f"expected a label (text, or a map of locale to text), got {_describe(instance)}", None)]
        return _translate(best_match(error.context))
    if keyword in ("minItems", "minProperties"):
        return [(path, False, "must not be empty", None)]
    if keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return [(path, False, f"{_describe(instance)} is out of range ({keyword} {error.validator_value})", None)]
    return [(path, False, error.message, None)]


def export_schema(kind: DefinitionKind, registry: Registry) -> dict[str, Any]:
    """The full schema of a kind for editors: dispatch points become if/then chains."""
    schema = copy.deepcopy(kind.options_schema)
    schema["$schema"] = SCHEMA_DIALECT
    schema.setdefault("title", f"Docket {kind.name} definition")
    for dispatch in kind.dispatch:
        kind_registry = getattr(registry, dispatch.registry_kind)
        branches = []
        for plugin in kind_registry:
            names = [plugin.name, *getattr(plugin, "aliases", ())]
            branches.append({
                "if": {"properties": {dispatch.discriminator: {"enum": names}},
                       "required": [dispatch.discriminator]},
                "then": item_schema(dispatch, plugin),
            })
        item = {
            "type": "object",
            "required": [dispatch.discriminator],
            "properties": {dispatch.discriminator: {"enum": kind_registry.names()}},
            "allOf": branches,
        }
        _place(schema, dispatch.path, item)
    return schema


def _place(schema: dict[str, Any], path: tuple[str, ...], item: dict[str, Any]) -> None:
    """Put `item` at the schema location matching a dispatch path."""
    node = schema
    for i, part in enumerate(path):
        last = i == len(path) - 1
        if part == "*":
            key = "items" if node.get("type") == "array" else "additionalProperties"
            if last:
                node[key] = item
                return
            node = node.setdefault(key, {})
        else:
            props = node.setdefault("properties", {})
            if last:
                props[part] = item
                return
            node = props.setdefault(part, {})


def write_schemas(registry: Registry, out: Path) -> list[Path]:
    """Write one `<kind>.schema.json` per definition kind; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for kind in registry.definition_kinds:
        target = out / f"{kind.name}.schema.json"
        target.write_text(json.dumps(export_schema(kind, registry), indent=2, ensure_ascii=False) + "\n",
                          encoding="utf-8")
        written.append(target)
    return written
