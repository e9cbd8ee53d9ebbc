"""Loading a bundle: discover files, load YAML, validate, build, check across files, freeze.

A bundle is a folder: `bundle.yaml` plus one folder per definition kind (`forms/`, `flows/`,
`rules/`, `reports/`, `lists/`, ...) and `templates/`; any other folder is a warning. Every problem in every file is collected
and reported together, sorted by file and line.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from engine.bundle_meta import BUNDLE_SCHEMA, BundleMeta, build_meta
from engine.errors import DefinitionError, Diagnostic, Diagnostics, did_you_mean
from engine.kinds import CRASHED, BuildContext
from engine.registry import Registry
from engine.schema import SchemaChecker, check_document
from engine.types import Span, YamlPath
from engine.yamlsource import Document, load_yaml_file


TEMPLATE_FOLDER = "templates"
SCENARIO_FOLDER = "scenarios"
"""Analysts' scenario tests (`docket test`, web/scenarios.py): not part of the running bundle."""
MAX_TEMPLATE_BYTES = 512 * 1024
YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Bundle:
    """A loaded, checked, immutable bundle; `hash` is its version identity."""

    root: Path
    meta: BundleMeta
    hash: str
    registry: Registry
    definitions: Mapping[str, Mapping[str, Any]]
    documents: Mapping[tuple[str, str], Document]
    templates: Mapping[str, str]
    warnings: tuple[Diagnostic, ...] = ()

    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def version(self) -> str:
        return self.meta.version

    def all(self, kind: str) -> Mapping[str, Any]:
        """Every definition of a kind, by name."""
        return self.definitions.get(kind, MappingProxyType({}))

    def get(self, kind: str, name: str) -> Any:
        """One definition; KeyError if it does not exist."""
        return self.all(kind)[name]


@dataclass
class _Loading:
    root: Path
    registry: Registry
    diags: Diagnostics = field(default_factory=Diagnostics)
    documents: dict[tuple[str, str], Document] = field(default_factory=dict)


def display_path(path: Path) -> str:
    """The path as shown in diagnostics: relative to the working directory when inside it, else
    absolute (a service's ExecStart=/opt/docket/... read '../../../opt/docket/...')."""
    absolute = os.path.abspath(path)
    try:
        inside = os.path.relpath(absolute)
    except ValueError:  # another drive (Windows)
        return absolute
    return absolute if inside == os.pardir or inside.startswith(os.pardir + os.sep) else inside


def content_hash(root: Path) -> str:
    """A hash of every file of the bundle: the bundle's version identity. Scenario tests are
    left out: editing one changes nothing that runs."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        parts = rel.split("/")
        if any(part.startswith(".") or part == "__pycache__" for part in parts) or parts[0] == SCENARIO_FOLDER:
            continue
        digest.update(rel.encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def _yaml_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in YAML_SUFFIXES)


def _nearby_folder(root: Path) -> str | None:
    """A "did you mean" for a bundle folder that does not exist: a close name beside it."""
    parent = root.parent
    if not parent.is_dir():
        return None
    try:
        siblings = [p.name for p in parent.iterdir() if p.is_dir() and (p / "bundle.yaml").is_file()]
    except OSError:
        return None
    return did_you_mean(root.name, siblings)


def _load_templates(root: Path, diags: Diagnostics) -> dict[str, str]:
    folder = root / TEMPLATE_FOLDER
    templates: dict[str, str] = {}
    if not folder.is_dir():
        return templates
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        shown = display_path(path)
        if path.stat().st_size > MAX_TEMPLATE_BYTES:
            diags.error(f"template is larger than {MAX_TEMPLATE_BYTES:,} bytes", Span(shown, 1, 1),
                        code="template-too-large")
            continue
        try:
            templates[path.relative_to(folder).as_posix()] = path.read_text("utf-8")
        except UnicodeDecodeError:
            diags.error("the template is not valid UTF-8", Span(shown, 1, 1), code="yaml-encoding")
    return templates


def validate_bundle(root: Path | str, registry: Registry) -> tuple[Bundle | None, list[Diagnostic]]:
    """Load and check a bundle; returns (bundle or None, every diagnostic sorted)."""
    root = Path(root)
    state = _Loading(root, registry)
    diags = state.diags
    manifest = root / "bundle.yaml"
    if not root.is_dir():
        exists = root.exists()
        diags.error(f"'{display_path(root)}' is a file, not a bundle folder" if exists
                    else f"the folder '{display_path(root)}' does not exist",
                    Span(display_path(root), 1, 1), code="no-bundle",
                    hint=(f"give the folder holding it: {display_path(root.parent)}" if root.name == "bundle.yaml"
                          else "give the bundle's folder, the one holding bundle.yaml") if exists
                    else _nearby_folder(root))
        return None, diags.sorted()
    if not manifest.is_file():
        where = display_path(manifest)
        # `docket validate definitions`: the folder of bundles, not a bundle. Name them.
        inside = sorted(display_path(child) for child in root.iterdir() if (child / "bundle.yaml").is_file())
        diags.error("no bundle.yaml: a bundle is a folder with bundle.yaml at its top",
                    Span(where, 1, 1), code="no-bundle",
                    hint="the bundles in this folder: " + ", ".join(inside[:8]) if inside else None)
        return None, diags.sorted()
    checker = SchemaChecker(registry)
    meta_doc = load_yaml_file(manifest, display_path(manifest), diags)
    meta = None
    if meta_doc is not None:
        from jsonschema import Draft202012Validator

        # An unknown key in bundle.yaml still gives the roles and departments every flow is
        # checked against; only a file whose shape is broken leaves them unknown.
        meta_doc = check_document(meta_doc, Draft202012Validator(BUNDLE_SCHEMA), diags)
        if meta_doc is not None:
            meta = build_meta(meta_doc, diags, registry)

    definitions: dict[str, dict[str, Any]] = {}
    ctx = BuildContext(registry, diags, state.documents, definitions, meta)
    kinds = sorted(registry.definition_kinds, key=lambda k: (k.order, k.name))
    known_folders = {k.folder for k in kinds} | {TEMPLATE_FOLDER, SCENARIO_FOLDER}
    for child in sorted(root.iterdir()):
        if child.is_dir() and not child.name.startswith(".") and child.name not in known_folders:
            close = did_you_mean(child.name, known_folders)
            diags.warning(f"folder '{child.name}' is not a definition folder and is ignored",
                          Span(display_path(child), 1, 1), code="unknown-folder",
                          hint=(close.replace("'?", "/'?") if close else
                                "definition folders: " + ", ".join(sorted(known_folders))))
    for kind in kinds:
        built = definitions.setdefault(kind.name, {})
        origin: dict[str, str] = {}
        for path in _yaml_files(root / kind.folder):
            loaded = load_yaml_file(path, display_path(path), diags)
            # The build sees the document as checked: without unknown keys (see SchemaChecker).
            doc = checker.check(loaded, kind, diags) if loaded is not None else None
            if doc is None:
                ctx.incomplete.add(kind.name)
                continue
            name = doc.data[kind.key]
            if name in built or name in origin:
                ctx.error(doc, (kind.key,), f"{kind.name} '{name}' is already defined in {origin[name]}",
                          code="duplicate-definition")
                continue
            origin[name] = doc.file
            state.documents[(kind.name, name)] = doc
            spec = ctx.guarded(lambda: kind.build(doc, ctx), doc, (kind.key,), f"building {kind.name} '{name}'")
            if spec is not None and spec is not CRASHED:
                built[name] = spec
            else:
                ctx.incomplete.add(kind.name)
    templates = _load_templates(root, diags)
    if meta is None:
        return None, diags.sorted()
    for doc in state.documents.values():
        _check_label_languages(doc, meta.locales, diags)
    bundle = Bundle(
        root=root,
        meta=meta,
        hash=content_hash(root),
        registry=registry,
        definitions=MappingProxyType({k: MappingProxyType(v) for k, v in definitions.items()}),
        documents=MappingProxyType(dict(state.documents)),
        templates=MappingProxyType(templates),
    )
    for kind in kinds:
        ctx.guarded(lambda: kind.check(bundle, ctx), None, (), f"checking the {kind.name} definitions")
    if diags.has_errors:
        return None, diags.sorted()
    warnings = tuple(d for d in diags.sorted() if d.severity == "warning")
    return Bundle(**{**bundle.__dict__, "warnings": warnings}), diags.sorted()


_LOCALE_KEY = re.compile(r"[a-z]{2,3}([-_][A-Za-z]{2,4})?")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_VALUE_MAPS = frozenset({"fields", "fill", "values", "compute", "match", "answer", "with"})
"""Mappings whose keys are field names, not a definition's own keys: a field may be called label."""


def _check_label_languages(doc: Document, locales: tuple[str, ...], diags: Diagnostics) -> None:
    """Warn about a label's text in a language the bundle does not have (`zh_CN` for `zh-CN`,
    shown to nobody) and about a label missing one of the bundle's languages (its readers see
    another language). A label is a mapping of locale-like keys to text with at least one of
    the bundle's locales among them. A plain `label:` in Chinese is warned about too when the
    bundle has another language."""
    chinese = next((locale for locale in locales if locale.lower().startswith("zh")), None)
    others = [locale for locale in locales if not locale.lower().startswith("zh")]

    def walk(value: Any, path: YamlPath) -> None:
        if isinstance(value, dict):
            keys = list(value)
            if (keys and all(isinstance(k, str) and _LOCALE_KEY.fullmatch(k) for k in keys)
                    and all(isinstance(v, str) for v in value.values()) and set(keys) & set(locales)):
                unknown = [key for key in keys if key not in locales]
                for key in unknown:
                    diags.warning(f"'{key}' is not one of the bundle's languages: this text is shown to no one",
                                  doc.source_map.key(path + (key,)), code="label-language", yaml_path=path + (key,),
                                  hint=did_you_mean(key, locales) or "languages: " + ", ".join(locales))
                missing = [locale for locale in locales if locale not in value]
                if missing and not unknown:  # a misspelt language is the one warning worth reading
                    diags.warning(f"this label has no {', '.join(missing)} text: those readers see "
                                  "another language", doc.source_map.value(path), code="label-missing-language",
                                  yaml_path=path)
                return
            for key, item in value.items():
                if key == "label" and isinstance(item, str) and _CJK.search(item) and others \
                        and not (path and path[-1] in _VALUE_MAPS):
                    # `label: 上门核表`: one language, shown as it is to the bundle's other readers.
                    diags.warning(f"this label is in Chinese only: {', '.join(others)} readers see it as it is",
                                  doc.source_map.value(path + (key,)), code="label-missing-language",
                                  yaml_path=path + (key,),
                                  hint=f"write {{{chinese or 'zh-CN'}: {item}, {others[0]}: ...}}")
                    continue
                walk(item, path + (key,))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, path + (i,))
    walk(doc.data, ())


def load_bundle(root: Path | str, registry: Registry) -> Bundle:
    """Load a bundle or raise `DefinitionError` carrying every diagnostic."""
    bundle, diags = validate_bundle(root, registry)
    if bundle is None:
        raise DefinitionError([d for d in diags if d.severity == "error"])
    return bundle


def write_bundle_schemas(registry: Registry, out: Path) -> list[Path]:
    """Write the JSON Schemas of bundle.yaml and of every definition kind into `out`."""
    import json

    from engine.schema import write_schemas

    written = write_schemas(registry, out)
    target = out / "bundle.schema.json"
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema",
              "title": "Docket bundle.yaml", **BUNDLE_SCHEMA}
    target.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return [target, *written]


def load_bundle_files(files: Mapping[str, str], registry: Registry) -> Bundle:
    """Load a bundle from its files' text ({relative path: text}), e.g. a version kept in the
    database so that instances started on it can go on running after a newer one is deployed."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="docket-bundle-") as tmp:
        root = Path(tmp)
        for rel, text in files.items():
            target = (root / rel).resolve()
            if root.resolve() not in target.parents:
                raise DefinitionError([Diagnostic(f"stored bundle file '{rel}' is outside the bundle")])
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        return load_bundle(root, registry)
