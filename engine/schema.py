"""JSON Schemas (Draft 2020-12) of definition kinds, and schema errors as positioned diagnostics.

Validation is two-stage, as Kestra and n8n do it: the file against its kind's core schema, then
each item at a `Dispatch` point against the schema of *its* type alone (common keys + the plugin
type's `options_schema`), so an analyst sees "unknown key 'lable' (did you mean 'label'?)" rather
than a wall of `oneOf` failures. `export_schema` emits the same rules as `if/then` chains for
editors (`docket schema --out DIR`).

A schema error does not hide the file's other problems: the kind's build still runs on a copy
without the unknown keys, when what is left has the shape the build relies on (`recover`).
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterable

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from engine.errors import Diagnostics, did_you_mean, invisible_hint, separator_hint
from engine.kinds import DefinitionKind, Dispatch, walk_dispatch
from engine.registry import Registry
from engine.types import YamlPath
from engine.yamlsource import YAML11_BOOLEANS, Document, SourceMap

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

Located = tuple[YamlPath, ValidationError]
"""A schema error with the path of the item it was found in (the error's path is inside it)."""

SHAPE_KEEPING = frozenset({"propertyNames", "uniqueItems"})
"""Keywords whose errors leave every value of the type its schema gives (see `keeps_shape`)."""

DID_YOU_MEAN_CUTOFF = 0.6
"""As close as engine.errors.did_you_mean's suggestion: the key read is the one the hint names."""

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

    def check(self, doc: Document, kind: DefinitionKind, diags: Diagnostics) -> Document | None:
        """Validate `doc` as a `kind`, report every problem, and return the document the kind's
        build should see, or None when the build must be skipped.

        One mistake should not hide the others of a file, so the build still runs after
        problems that leave the data in the shape the build relies on (see `recover`): unknown
        keys (left out, or read as the missing key they misspell), unknown plugin types (the
        build skips those items), badly formed names and repeated list entries. A definition
        whose own name is wrong is not built: other files may name it as it was meant.
        """
        errors, unknown_types = self._validate(doc.data, kind)
        for path, dispatch, kind_registry, type_name in unknown_types:
            hint = kind_registry.hint(type_name) or ("known types: " + ", ".join(kind_registry.names()))
            diags.error(f"unknown {kind_registry.kind} '{type_name}'",
                        doc.source_map.value(path + (dispatch.discriminator,)),
                        code="unknown-type", hint=hint, yaml_path=path + (dispatch.discriminator,))
        for base, error in errors:
            report_errors((error,), doc, base, diags)
        if any(base + tuple(error.absolute_path) == (kind.key,) for base, error in errors):
            return None
        return recover(doc, errors, lambda data: self._validate(data, kind)[0])

    def _validate(self, data: Any, kind: DefinitionKind) -> tuple[list[Located], list[tuple[Any, ...]]]:
        """Every schema error of `data` as (path of the validated item, error), and every item
        of an unknown plugin type as (path, dispatch, its registry, type name)."""
        core = self._validator(("kind", kind.name), kind.options_schema)
        errors: list[Located] = [((), e) for e in core.iter_errors(data)]
        unknown_types = []
        for dispatch in kind.dispatch:
            kind_registry = getattr(self.registry, dispatch.registry_kind)
            for path, item in walk_dispatch(data, dispatch.path):
                if not isinstance(item, dict):
                    continue  # the core schema has reported it
                type_name = item.get(dispatch.discriminator)
                if not isinstance(type_name, str):
                    # Without a type the item's own schema is unknown: check what every item
                    # needs, so a missing or misspelt `type` is reported, never built on.
                    key = (dispatch.path, dispatch.registry_kind, None)
                    common = {"type": "object", **dispatch.common_schema}
                    errors.extend((path, e) for e in self._validator(key, common).iter_errors(item))
                    continue
                plugin = kind_registry.get(type_name)
                if plugin is None:
                    unknown_types.append((path, dispatch, kind_registry, type_name))
                    continue
                key = (dispatch.path, dispatch.registry_kind, kind_registry.canonical(type_name))
                validator = self._validator(key, item_schema(dispatch, plugin))
                errors.extend((path, e) for e in validator.iter_errors(item))
        return errors, unknown_types


def check_document(doc: Document, validator: Draft202012Validator, diags: Diagnostics) -> Document | None:
    """Validate a document that has one schema (bundle.yaml), report every problem, and return
    the document its build should see, or None (see `recover`)."""
    errors: list[Located] = [((), e) for e in validator.iter_errors(doc.data)]
    report_errors((e for _, e in errors), doc, (), diags)
    return recover(doc, errors, lambda data: [((), e) for e in validator.iter_errors(data)])


# -- building after schema errors ---------------------------------------------------------------

def keeps_shape(error: ValidationError) -> bool:
    """Can a build still read the data this error is about? A badly formed name is still text
    that is only ever looked up, and a repeated list entry is still an entry. A wrong type, a
    missing key, a value outside a fixed list (enum) or a number out of range is not: builds
    and plugins index tables with those values and compute with them."""
    if error.validator in SHAPE_KEEPING:
        return True
    return error.validator == "pattern" and error.validator_value == NAME_PATTERN


def recover(doc: Document, errors: list[Located],
            revalidate: Callable[[Any], Iterable[Located]]) -> Document | None:
    """The document a build should see after these schema errors, or None to skip the build.

    Without unknown keys, that is `doc` itself when every error keeps the shape. Unknown keys
    are taken out of a copy (`without_unknown_keys`), which must then pass the schema but for
    errors that keep the shape: a build only ever reads data of the shape it was written for.
    """
    unknown = [(base + tuple(error.absolute_path), key, allowed)
               for base, error in errors if error.validator == "additionalProperties"
               for key, allowed in unknown_keys(error)]
    if not unknown:
        return doc if all(keeps_shape(error) for _, error in errors) else None
    repaired = without_unknown_keys(doc, unknown)
    return repaired if all(keeps_shape(error) for _, error in revalidate(repaired.data)) else None


def unknown_keys(error: ValidationError) -> list[tuple[str, frozenset[str]]]:
    """(key, keys allowed there) for each key an `additionalProperties: false` error refuses."""
    instance = error.instance
    if error.validator != "additionalProperties" or not isinstance(instance, dict):
        return []
    allowed = frozenset(error.schema.get("properties", {}))
    patterns = error.schema.get("patternProperties", {})
    return [(key, allowed) for key in instance
            if key not in allowed and not any(re.search(p, str(key)) for p in patterns)]


def without_unknown_keys(doc: Document, unknown: list[tuple[YamlPath, Any, frozenset[str]]]) -> Document:
    """A copy of `doc` without the unknown keys: each is read as the allowed key it misspells
    when that key is missing (`nxt: done` as `next: done`, so the node's path still counts and
    `done` is still checked), and left out otherwise. `doc` itself is never changed."""
    data = copy.deepcopy(doc.data)  # keeps YAML aliases shared, as they were loaded
    source_map = replace(doc.source_map, values=dict(doc.source_map.values), keys=dict(doc.source_map.keys),
                         scalars=dict(doc.source_map.scalars), plain=set(doc.source_map.plain))
    for mapping_path, key, allowed in unknown:
        mapping = _at(data, mapping_path)
        if not isinstance(mapping, dict) or key not in mapping:
            continue  # the same mapping, reached again through a YAML alias
        meant = difflib.get_close_matches(str(key), sorted(allowed), n=1, cutoff=DID_YOU_MEAN_CUTOFF)
        if meant and meant[0] not in mapping:
            items = list(mapping.items())  # in place, so the order of the keys is kept
            mapping.clear()
            mapping.update((meant[0] if k == key else k, v) for k, v in items)
            _alias(source_map, mapping_path + (key,), mapping_path + (meant[0],))
        else:
            del mapping[key]
    return Document(doc.file, data, source_map)


def _at(data: Any, path: YamlPath) -> Any:
    """The value at `path`, or None when there is none."""
    for part in path:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return None
    return data


def _alias(source_map: SourceMap, old: YamlPath, new: YamlPath) -> None:
    """Positions under `new` are those written under `old`, so problems found in a renamed
    key's value point where the analyst wrote it."""
    size = len(old)
    for table in (source_map.values, source_map.keys, source_map.scalars):
        for path, where in [(p, w) for p, w in table.items() if p[:size] == old]:
            table[new + path[size:]] = where  # type: ignore[index]
    source_map.plain |= {new + p[size:] for p in source_map.plain if p[:size] == old}


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
            if not at_key and "type" == error.validator:
                hint = (hint or _word_hint(full, error) or _condition_hint(full, error)
                        or _indent_hint(doc.data, full, error))
            if not at_key and "type" == error.validator and doc.source_map.is_plain(full):
                hint = hint or _coercion_hint(error)
            elif not at_key and "type" == error.validator:
                hint = hint or _quoted_number_hint(error)
            diags.error(message, span, code=f"schema-{error.validator}", hint=hint,
                        yaml_path=full)


WORD_MEANS = "x-word-means"
"""A schema extension of a mapping: the key a bare word written in its place most likely meant
(`assign: quality_committee` for `assign: {role: quality_committee}`)."""


def _word_hint(path: YamlPath, error: ValidationError) -> str | None:
    """The mapping a bare word stands for, where the schema says which key a word means."""
    key = error.schema.get(WORD_MEANS) if isinstance(error.schema, dict) else None
    if key is None or not isinstance(error.instance, str) or not path:
        return None
    if isinstance(path[-1], int):  # an item of a list: `- gold`
        return f"write - {{{key}: {error.instance}}}"
    return f"write {path[-1]}: {{{key}: {error.instance}}}"


CONDITION_KEY = "x-condition-key"
"""A schema extension of a yes/no key: the key that takes a condition instead (`required` ->
`required_if`), for a condition written where true or false belongs."""


def _condition_hint(path: YamlPath, error: ValidationError) -> str | None:
    """`required: key_account` for "required when key_account holds": the key that takes it."""
    key = error.schema.get(CONDITION_KEY) if isinstance(error.schema, dict) else None
    value = error.instance
    if key is None or not isinstance(value, str) or value.lower() in YAML11_BOOLEANS or not path:
        return None
    return f"{path[-1]} takes true or false; for a condition write {key}: {value}"


def _quoted_number_hint(error: ValidationError) -> str | None:
    """`max: "10"`: a number in quotes is text."""
    expected = error.validator_value
    expected = [expected] if isinstance(expected, str) else list(expected)
    if not ({"number", "integer"} & set(expected)) or not isinstance(error.instance, str):
        return None
    try:
        float(error.instance.strip())
    except ValueError:
        return None
    return f"write {error.instance.strip()} without quotes: in quotes it is text"


def _indent_hint(data: Any, path: YamlPath, error: ValidationError) -> str | None:
    """When a mapping was expected: a key the analyst meant inside the entry above, written in
    line with it (`autocomplete: name` two spaces short reads as a field of its own), or a key
    with nothing indented under it (`assign:` with `role:` in line with it)."""
    expected = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
    if "object" not in expected or isinstance(error.instance, (dict, list)) or not path:
        return None
    key = path[-1]
    if error.instance is None:
        return f"nothing is indented under '{key}:': indent the lines that belong to it further than '{key}'"
    parent: Any = data
    for step in path[:-1]:
        try:
            parent = parent[step]
        except (KeyError, IndexError, TypeError):
            return None
    keys = list(parent) if isinstance(parent, dict) else []
    before = keys[keys.index(key) - 1] if key in keys and keys.index(key) > 0 else None
    if before is None or not all(isinstance(value, dict) for name, value in parent.items() if name != key):
        return None  # not a collection of named entries (fields, nodes): `assign: agent` is no slip of indentation
    return (f"'{key}' is read as an entry of its own, beside '{before}': if it belongs to '{before}', "
            f"indent it as far as the keys of '{before}'")


def _label_problem(path: YamlPath, instance: Any) -> tuple[YamlPath, bool, str, str | None]:
    """A label that is neither text nor a map of locale to text. The usual cause: an English
    text with a comma inside `{...}` (`{zh-CN: 撤回, en: Withdrawn, reopened}`), which YAML reads
    as a second entry, ` reopened`, without text."""
    if isinstance(instance, dict):
        empty = [key for key, value in instance.items() if value is None]
        if empty:
            stray = str(empty[0]).strip()
            stray = stray if len(stray) <= 30 else stray[:30] + "…"  # the hint shows it whole
            return (path + (empty[0],), True,
                    f"the label's '{stray}' has no text: inside {{...}} a comma starts a new entry",
                    _comma_hint(instance))
    return (path, False, f"expected a label (text, or a map of locale to text), got {_describe(instance)}", None)


def _comma_hint(label: dict[Any, Any]) -> str:
    """The text the analyst meant, in quotes: the entry before the stray ones, with them."""
    items = list(label.items())
    for i, (key, value) in enumerate(items):
        if value is None and i > 0 and isinstance(items[i - 1][1], str):
            locale, text = items[i - 1]
            strays = []
            for stray, nothing in items[i:]:
                if nothing is not None:
                    break
                strays.append(str(stray).strip())
            meant = ", ".join([text, *strays])
            curly = next((mark for mark in "“”‘’" if mark in (meant[:1], meant[-1:])), None)
            if curly is not None:  # the analyst did quote it, with the input method's marks
                bare = meant.strip('“”‘’"')
                return (f"'{curly}' is a Chinese quotation mark, which YAML reads as text: quote with \" "
                        f"(switch the input method to English punctuation): {locale}: \"{bare}\"")
            return f"put the text in quotes: {locale}: \"{meant}\""
    return "put a text holding a comma in quotes: en: \"Withdrawn, reopened\""


def _coercion_hint(error: ValidationError) -> str | None:
    value, expected = error.instance, error.validator_value
    expected = [expected] if isinstance(expected, str) else list(expected)
    if "boolean" in expected and isinstance(value, str) and value.lower() in YAML11_BOOLEANS:
        return f"Docket reads only true and false as yes/no values; write {'true' if value.lower() in ('yes', 'on', 'y') else 'false'}"
    if "string" in expected and not isinstance(value, (str, dict, list)):
        return "put the value in quotes to keep it as text, e.g. '0755'"
    if ("number" in expected or "integer" in expected) and isinstance(value, str) and separator_hint(value):
        return separator_hint(value)
    if expected == ["array"] and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        # `fields: field_reading` for a list of one: the brackets are what is missing.
        return f"write it in brackets, as a list: [{value}]"
    return None


def _other_kind(hint: str, value: Any, schema: dict[str, Any]) -> str:
    """`hint` ("did you mean 'role'?"), saying what the suggested key takes when `value` is of
    another kind, and what the mapping's keys are for when its schema says: `roles: [a, b]` on a
    countersign is no misspelt `role: a`, and the plain suggestion would lead to the wrong fix."""
    meant = hint.split("'")[1]
    types = (schema.get("properties") or {}).get(meant, {}).get("type")
    if not types or Draft202012Validator({"type": types}).is_valid(value):
        return hint
    described = schema.get("description")
    return (f"{hint} It takes {_expected(types)}, not {_describe(value)}"
            + (f"; here: {described}" if described else ""))


def _translate(error: ValidationError) -> list[tuple[YamlPath, bool, str, str | None]]:
    """(path, at_key, message, hint) for one jsonschema error, in an analyst's words."""
    path: YamlPath = tuple(error.absolute_path)
    keyword = error.validator
    instance = error.instance
    if _about_a_key(error):  # jsonschema reports a bad key as its mapping's error
        return [(path + (instance,), True, f"'{instance}' is not a valid name here",
                 _name_hint(instance))]
    if keyword == "additionalProperties" and isinstance(instance, dict):
        out = []
        for key, allowed in unknown_keys(error):
            written, _, _ = str(key).partition("：")
            if written != str(key) and written.strip() in allowed:
                # `{label： 标题}` is valid YAML: one key, Chinese colon and value included.
                hint = (f"a Chinese colon '：' joined '{written.strip()}' to its value: write ':' and a space "
                        "(switch the input method to English punctuation)")
            else:
                hint = did_you_mean(str(key), allowed)
                hint = _other_kind(hint, instance[key], error.schema) if hint else (
                    "allowed keys: " + ", ".join(sorted(allowed)) if allowed else None)
            out.append((path + (key,), True, f"unknown key '{key}'", hint))
        return out or [(path, False, error.message, None)]
    if keyword == "required" and isinstance(instance, dict):
        missing = [k for k in error.validator_value if k not in instance]
        known = set(error.schema.get("properties", {}))
        return [(path, True, f"missing required key '{k}'", _written_as(k, instance, known)) for k in missing]
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
                     _name_hint(instance))]
        described = error.schema.get("description")
        if described:  # the analyst's words for what is accepted, rather than a regular expression
            return [(path, False, f"{_describe(instance)} is not a value this key takes",
                     f"expected: {described}")]
        return [(path, False, f"{_describe(instance)} does not match the pattern {error.validator_value}", None)]
    if keyword == "propertyNames" and error.context:
        inner = best_match(error.context)
        bad = inner.instance
        return [(path + (bad,), True, f"'{bad}' is not a valid name here",
                 _name_hint(bad))]
    if keyword in ("anyOf", "oneOf") and error.context:
        if error.schema is LABEL_SCHEMA or error.schema.get("description") == LABEL_SCHEMA["description"]:
            return [_label_problem(path, instance)]
        # The problem inside the form the value was written in: `due: [{when: x}]` is a list of
        # the wrong items, not "expected text".
        inside = [e for e in error.context if not (e.validator == "type" and not e.relative_path)]
        if inside and len(inside) < len(error.context):
            return [problem for e in _fewest_branches(inside) for problem in _translate(e)]
        return _translate(best_match(error.context))
    if keyword in ("minItems", "minProperties") and error.validator_value == 1:
        return [(path, False, "must not be empty", None)]
    if keyword in ("minItems", "maxItems", "minProperties", "maxProperties"):
        # "['created.month', 'region', 'category', 'urgency'] is too long" said neither the limit
        # nor how many there were.
        what = "entries" if keyword.endswith("Items") else "keys"
        bound = "at least" if keyword.startswith("min") else "at most"
        subject = f"'{path[-1]}'" if path and isinstance(path[-1], str) else "this"
        return [(path, False, f"{subject} takes {bound} {error.validator_value} {what}; {len(instance)} "
                 f"{'is' if len(instance) == 1 else 'are'} written", None)]
    if keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return [(path, False, f"{_describe(instance)} is out of range ({keyword} {error.validator_value})", None)]
    return [(path, False, error.message, None)]


def _fewest_branches(errors: list[ValidationError]) -> list[ValidationError]:
    """The errors of the one branch of an anyOf the value was written for (the first, when
    several kinds of value were)"""
    first = errors[0].relative_schema_path[0] if errors[0].relative_schema_path else None
    return [e for e in errors if (e.relative_schema_path[0] if e.relative_schema_path else None) == first]


def _name_hint(name: Any) -> str:
    """What a name may hold, or the invisible character pasted into it."""
    return invisible_hint(str(name)) or "names use lower-case letters, digits and _, starting with a letter"


def _written_as(missing: str, instance: dict[Any, Any], known: set[str]) -> str | None:
    """A hint naming the key of `instance` that looks like a misspelling of the missing key."""
    written = [str(k) for k in instance if k not in known]
    near = difflib.get_close_matches(missing, written, n=1, cutoff=DID_YOU_MEAN_CUTOFF)
    return f"'{near[0]}' is written: did you mean '{missing}'?" if near else None


def _about_a_key(error: ValidationError) -> bool:
    """Is this the error of a mapping's key (a `propertyNames` rule) rather than of a value?"""
    schema_path = list(error.relative_schema_path)
    return len(schema_path) >= 2 and schema_path[-2] == "propertyNames" and isinstance(error.instance, str)


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
