"""Actions on records: set fields, tag/flag, create a record of another form, apply a decision
table, recommend knowledge-base entries."""

from __future__ import annotations

from typing import Any, Mapping

from sqlalchemy import and_, bindparam, delete, select

from engine.actions import ActionContext, ActionScope, BaseAction
from engine.kinds import BuildContext
from engine.schema import LABEL_SCHEMA, NAME_PATTERN
from engine.storage.memo import forget, memo
from engine.storage.prepared import PreparedQuery
from engine.storage.tables import history, record_tags
from engine.types import YamlPath
from engine.yamlsource import Document
from forms.kind import check_filled, check_written_value
from rules.actions.common import add_history, json_safe, write_fields
from rules.exprs import compile_expr


def _form(ctx: BuildContext, name: str | None) -> Any:
    return ctx.definitions.get("form", {}).get(name) if name else None


def _check_fields(ctx: BuildContext, doc: Document, path: YamlPath, form_name: str | None,
                  names: Any, *, written: bool = True, values: Mapping[str, Any] | None = None) -> None:
    """Every name of `names` is a field of the form (an error at its key when not, listing the
    fields when none is close); fields `written` must be ones a rule may write, and `values`
    (literals written in the YAML) ones the field accepts: a rule found out only when it ran."""
    form = _form(ctx, form_name)
    if form is None:
        return
    for name in names:
        spec = form.fields.get(name)
        ftype = ctx.registry.field_types.get(spec.type) if spec is not None else None
        if spec is None:
            ctx.unknown(doc, path + (name,), "field", name, form.fields, at_key=True)
        elif ftype is not None and not ftype.stores_value:
            ctx.error(doc, path + (name,), f"'{name}' shows text only and holds no value",
                      code="invalid-field", at_key=True)
        elif written and (spec.computed is not None or getattr(ftype, "read_only", False)):
            ctx.error(doc, path + (name,), f"'{name}' is worked out by the system and cannot be set",
                      code="invalid-field", at_key=True,
                      hint="set the fields it is worked out from" if spec.computed is not None else None)
        elif values is not None and values.get(name) is not None:
            check_written_value(values[name], ftype, spec, ctx, doc, path + (name,), noun="value",
                                subject=f"field '{name}'", code="invalid-value")


_DERIVED = PreparedQuery(select(history.c.data).where(
    history.c.form == bindparam("form"), history.c.record_id == bindparam("record_id"),
    history.c.kind == "record.derived"))
"""The records already derived from a record (create_record's `once`)."""


def _matching(table: Any, title: str | None, fields: tuple[str, ...], limit: int) -> PreparedQuery:
    """The newest records of `table` whose `fields` equal the parameters m0, m1...: built once
    per table and shape (building the select per run cost more than running it)."""
    known: dict[Any, PreparedQuery] = table.info.setdefault("docket_recommend", {})
    query = known.get((title, fields, limit))
    if query is None:
        stmt = select(table.c.id.label("id"), table.c.query_no.label("query_no"),
                      *([table.c[title].label("title")] if title else []))
        for i, field in enumerate(fields):
            stmt = stmt.where(table.c[field] == bindparam(f"m{i}", type_=table.c[field].type))
        query = known[(title, fields, limit)] = PreparedQuery(stmt.order_by(table.c.id.desc()).limit(limit))
    return query

class SetFields(BaseAction):
    name = "set"
    aliases = ("set_fields",)
    description = ("Writes fields of the record: `fields` holds literal values, `compute` holds "
                   "expressions; values are validated like any edit.")
    options_schema = {"properties": {
        "fields": {"type": "object", "description": "field: literal value"},
        "compute": {"type": "object", "additionalProperties": {"type": "string"},
                    "description": "field: expression over the record"},
    }}
    examples = ("- action: set\n  fields: {priority: high}\n  compute: {details: \"'escalated on ' + str(today())\"}\n",)

    def compile(self, options: Mapping[str, Any], ctx: BuildContext, doc: Document,
                path: YamlPath, scope: ActionScope) -> Any:
        if not options.get("fields") and not options.get("compute"):
            ctx.error(doc, path, "set needs `fields` or `compute`", code="action")
        _check_fields(ctx, doc, path + ("fields",), scope.form, options.get("fields", {}),
                      values=options.get("fields", {}))
        _check_fields(ctx, doc, path + ("compute",), scope.form, options.get("compute", {}))
        compute = {k: compile_expr(ctx, doc, path + ("compute", k), scope.names)
                   for k in options.get("compute", {})}
        return {"fields": dict(options.get("fields", {})), "compute": compute}

    def run(self, act: ActionContext, compiled: Any) -> None:
        values = dict(compiled["fields"])
        for name, expr in compiled["compute"].items():
            values[name] = act.evaluate(expr)
        write_fields(act, act.form, act.record_id, values)  # type: ignore[arg-type]
        act.refresh()


class Tag(BaseAction):
    name = "tag"
    aliases = ("flag",)
    description = ("Puts a tag (a flag) on the record, e.g. repeat_customer; `remove: true` takes "
                   "it off. Expressions see the record's tags as `tags`.")
    options_schema = {"required": ["tag"], "properties": {
        "tag": {"type": "string", "pattern": NAME_PATTERN},
        "note": {"type": "string", "description": "an expression giving a note shown with the tag"},
        "remove": {"type": "boolean"},
    }}
    examples = ("- action: flag\n  tag: repeat_reporter\n  note: \"'3rd ticket in 30 days'\"\n",)

    def compile(self, options: Mapping[str, Any], ctx: BuildContext, doc: Document,
                path: YamlPath, scope: ActionScope) -> Any:
        note = compile_expr(ctx, doc, path + ("note",), scope.names) if "note" in options else None
        return {"tag": options["tag"], "note": note, "remove": bool(options.get("remove"))}

    def run(self, act: ActionContext, compiled: Any) -> None:
        where = and_(record_tags.c.form == act.form, record_tags.c.record_id == act.record_id,
                     record_tags.c.tag == compiled["tag"])
        present = act.conn.execute(select(record_tags.c.id).where(where)).first() is not None
        if compiled["remove"]:
            if present:
                forget(act.conn, _TAGS)
                act.conn.execute(delete(record_tags).where(where))
                add_history(act, "tag.removed", {"tag": compiled["tag"]})
        elif not present:
            note = act.evaluate(compiled["note"])
            forget(act.conn, _TAGS)
            act.conn.execute(record_tags.insert().values(
                form=act.form, record_id=act.record_id, tag=compiled["tag"],
                note=None if note is None else str(note)[:2000], created_at=act.runtime.clock.now(),
                created_by=act.actor or "system"))
            add_history(act, "tag.added", {"tag": compiled["tag"], "note": note})
        tags = tags_of(act.conn, act.form or "", act.record_id or 0)
        if act.names:
            act.names["tags"] = tags


_TAGS_OF = PreparedQuery(select(record_tags.c.tag).where(
    record_tags.c.form == bindparam("form"), record_tags.c.record_id == bindparam("record_id"))
    .order_by(record_tags.c.tag))
"""Read for every rule evaluation (`tags` is a name rules see): prepared once."""


_TAGS = "docket_record_tags"
"""The `engine.storage.memo` of the tags read in a transaction: every rule evaluation asks, and only the
`tag` action writes them (forgetting the memo)."""


def tags_of(conn: Any, form: str, record_id: int) -> list[str]:
    """The record's tags, alphabetical (read once per transaction or savepoint)."""
    known: dict[tuple[str, int], tuple[str, ...]] | None = memo(conn, _TAGS, dict)
    tags = known.get((form, record_id)) if known is not None else None
    if tags is None:
        tags = tuple(r["tag"] for r in _TAGS_OF.all(conn, {"form": form, "record_id": record_id}))
        if known is not None:
            known[(form, record_id)] = tags
    return list(tags)


class CreateRecord(BaseAction):
    name = "create_record"
    description = ("Creates a record of another form (e.g. a compensation form) filled from this "
                   "one: `fields` maps each target field to an expression over this record.")
    options_schema = {"required": ["form", "fields"], "properties": {
        "form": {"type": "string"},
        "fields": {"type": "object", "minProperties": 1, "additionalProperties": {"type": "string"}},
        "once": {"type": "boolean", "description": "at most one per source record (default true)"},
    }}
    needs_record = False
    examples = ("- action: create_record\n  form: claim\n  fields:\n"
                "    amount: cost\n    priority: priority\n",)

    def compile(self, options: Mapping[str, Any], ctx: BuildContext, doc: Document,
                path: YamlPath, scope: ActionScope) -> Any:
        forms = ctx.definitions.get("form", {})
        target = forms.get(options["form"])
        if target is None:
            ctx.unknown(doc, path + ("form",), "form", options["form"], forms)
        else:
            _check_fields(ctx, doc, path + ("fields",), options["form"], options["fields"])
            check_filled(ctx, doc, path + ("fields",), target, options["fields"])
        fields = {k: compile_expr(ctx, doc, path + ("fields", k), scope.names)
                  for k in options["fields"]}
        return {"form": options["form"], "fields": fields, "once": options.get("once", True)}

    def run(self, act: ActionContext, compiled: Any) -> None:
        forms = act.service("forms")
        if compiled["once"] and act.record_id is not None:
            earlier = _DERIVED.all(act.conn, {"form": act.form, "record_id": act.record_id})
            if any((row["data"] or {}).get("form") == compiled["form"] for row in earlier):
                return  # already derived from this record
        values = {k: act.evaluate(e) for k, e in compiled["fields"].items()}
        form = forms.form(compiled["form"])
        clean = form.validate(json_safe(values), ctx=act.eval_context(),
                              extra_names={"user": {"username": act.actor}})
        source = {"form": act.form, "record_id": act.record_id,
                  "query_no": act.record.get("query_no")} if act.record_id is not None else None
        result = forms.insert_validated(act.conn, compiled["form"], clean, actor=act.actor,
                                        channel="rule", source=source)
        add_history(act, "record.derived", {"form": compiled["form"], "record_id": result.record_id,
                                            "query_no": result.query_no})


class Decide(BaseAction):
    name = "decide"
    description = ("Applies a decision table to the record and writes its outputs into the "
                   "fields of the same name (or as `fields` maps them).")
    options_schema = {"required": ["table"], "properties": {
        "table": {"type": "string"},
        "fields": {"type": "object", "additionalProperties": {"type": "string"},
                   "description": "field: output; default: every output named like a field"},
    }}
    examples = ("- action: decide\n  table: ticket_priority\n  fields: {priority: priority}\n",)

    def compile(self, options: Mapping[str, Any], ctx: BuildContext, doc: Document,
                path: YamlPath, scope: ActionScope) -> Any:
        tables = ctx.definitions.get("decision_table", {})
        table = tables.get(options["table"])
        if table is None:
            if "decision_table" not in ctx.incomplete:
                ctx.unknown(doc, path + ("table",), "decision table", options["table"], tables)
            return None
        form = _form(ctx, scope.form)
        mapping = options.get("fields")
        if mapping is None:
            mapping = {o: o for o in table.outputs if form is not None and o in form.fields}
            if not mapping:
                ctx.error(doc, path + ("table",), f"no output of '{table.name}' is a field of the "
                          "form: say where they go with `fields: {field: output}`", code="action")
        else:
            _check_fields(ctx, doc, path + ("fields",), scope.form, mapping)
            for field, output in mapping.items():
                if output not in table.outputs:
                    ctx.unknown(doc, path + ("fields", field), "output", output, table.outputs)
        if table.hit_policy == "collect":
            ctx.error(doc, path + ("table",), "a collect table gives a list; use decide() in an "
                      "expression instead", code="action")
        return {"table": options["table"], "fields": dict(mapping)}

    def run(self, act: ActionContext, compiled: Any) -> None:
        tables = act.service("decisions")
        table = tables[compiled["table"]]
        answer = table.decide(act.names or act.record, act.eval_context())
        if answer is None:
            return  # no row matched: nothing to write
        outputs = answer if isinstance(answer, dict) else {table.outputs[0]: answer}
        write_fields(act, act.form, act.record_id,  # type: ignore[arg-type]
                     {field: outputs.get(output) for field, output in compiled["fields"].items()})
        act.refresh()


class Recommend(BaseAction):
    name = "recommend"
    description = ("Recommends knowledge-base entries: records of a form whose fields match "
                   "this record's (`match: {their_field: expression}`), newest first, or "
                   "entries of a fixed list with `when` conditions. Shown on the record's timeline.")
    options_schema = {"properties": {
        "form": {"type": "string", "description": "the knowledge-base form"},
        "match": {"type": "object", "additionalProperties": {"type": "string"}},
        "title": {"type": "string", "description": "the field shown as the entry's title"},
        "limit": {"type": "integer", "minimum": 1, "maximum": 20},
        "entries": {"type": "array", "items": {"type": "object", "additionalProperties": False,
                                               "required": ["title"], "properties": {
                                                   "title": LABEL_SCHEMA, "when": {"type": "string"},
                                                   "url": {"type": "string"}}}},
    }}
    examples = ("- action: recommend\n  form: kb_article\n  match: {topic: topic}\n"
                "  title: headline\n  limit: 3\n",)

    def compile(self, options: Mapping[str, Any], ctx: BuildContext, doc: Document,
                path: YamlPath, scope: ActionScope) -> Any:
        if ("form" in options) == ("entries" in options):
            ctx.error(doc, path, "recommend needs either `form` and `match`, or `entries`",
                      code="action")
            return None
        if "entries" in options:
            entries = []
            for i, entry in enumerate(options["entries"]):
                when = compile_expr(ctx, doc, path + ("entries", i, "when"), scope.names) if "when" in entry else None
                entries.append((when, entry["title"], entry.get("url")))
            return {"entries": entries, "limit": options.get("limit", 5)}
        forms = ctx.definitions.get("form", {})
        kb = forms.get(options["form"])
        if kb is None:
            ctx.unknown(doc, path + ("form",), "form", options["form"], forms)
            return None
        if not options.get("match"):
            ctx.error(doc, path, "recommend from a form needs `match: {field: expression}`", code="action")
            return None
        _check_fields(ctx, doc, path + ("match",), options["form"], options["match"], written=False)
        title = options.get("title") or getattr(kb, "title_field", None)
        if title and title not in kb.fields:
            ctx.unknown(doc, path + ("title",), "field", title, kb.fields)
        match = {k: compile_expr(ctx, doc, path + ("match", k), scope.names) for k in options["match"]}
        return {"form": options["form"], "match": match, "title": title,
                "limit": options.get("limit", 3)}

    def run(self, act: ActionContext, compiled: Any) -> None:
        found: list[dict[str, Any]] = []
        if "entries" in compiled:
            from engine.types import label_text

            for when, title, url in compiled["entries"]:
                if when is None or act.evaluate(when):
                    found.append({"title": label_text(title, "en"), "label": title, "url": url})
        else:
            query = _matching(act.service("forms").tables[compiled["form"]], compiled["title"],
                              tuple(compiled["match"]), compiled["limit"])
            values = {f"m{i}": act.evaluate(expr) for i, expr in enumerate(compiled["match"].values())}
            for row in query.all(act.conn, values):
                found.append({"form": compiled["form"], "record_id": row["id"],
                              "title": str(row["title"]) if compiled["title"] else row["query_no"]})
        found = found[:compiled["limit"]]
        if found:
            add_history(act, "kb.recommended", {"entries": found})
