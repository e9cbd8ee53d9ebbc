"""`decisions/*.yaml`: DMN-like decision tables, checked at load and compiled to bit masks.

    decision_table: complaint_level
    form: complaint                  # inputs are expressions over its fields
    hit_policy: first                # first | unique | collect | priority
    complete: true                   # every combination of inputs must match a row
    inputs: {urgency: urgency, amount: amount_claimed}
    outputs: [level]
    rows:
      - {urgency: urgent, amount: "> 5000", level: 3}
      - {urgency: [urgent, important], level: 2}
      - {amount: "[1000..5000]", level: 2}
      - {level: 1}                   # an input left out (or "-") matches anything

Cells: a literal (equality), a list (one of), `null`, `"-"` (any), a comparison
(`"> 5000"`, `"<= 10"`, `"!= urgent"`) or a range (`"[1000..5000)"`; `[ ]` closed, `( )` open).
A row may add `when:` (an expression over the inputs) for what cells cannot say.

Compiled form: for every input, each possible value falls into a *region* (a literal, an
interval between two bounds, "anything else"), and each region has a precomputed bit mask of the
rows it satisfies. Matching one record is one lookup per input and an AND of integers, so a
50-row table costs about as much as a 3-row one; no analyst text is ever turned into code.
The same regions drive the load checks: rows overlapping under `unique` and gaps under
`complete`, each reported with an example of the inputs concerned.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Callable, Mapping

from engine.errors import amount_hint, did_you_mean, separator_hint
from engine.expr.context import Options, label_hint
from engine.kinds import BuildContext
from engine.schema import LABEL_SCHEMA, NAME_PATTERN
from engine.types import Label, Span, YamlPath
from engine.yamlsource import Document
from rules.exprs import compile_expr, scope_of

HIT_POLICIES = ("first", "unique", "collect", "priority")
MAX_CHECKED_COMBINATIONS = 200_000
"""The overlap and gap checks stop after this many input combinations (reported as a warning)."""

_COMPARISON = re.compile(r"^\s*(<=|>=|!=|==|<|>)\s*(.+?)\s*$")
_RANGE = re.compile(r"^\s*([\[(])?\s*(-?[\d.]+)\s*\.\.\s*(-?[\d.]+)\s*([\])])?\s*$")
_ANY = ("-", "any", "*", "")
INF = float("inf")


class DecisionError(Exception):
    """A table could not decide (two rows matched under `unique`)."""


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    low_closed: bool
    high_closed: bool

    def contains(self, v: float) -> bool:
        if v < self.low or v > self.high:
            return False
        if v == self.low and not self.low_closed:
            return False
        if v == self.high and not self.high_closed:
            return False
        return True


@dataclass(frozen=True)
class Cell:
    """One condition cell: any value, one of `values`, none of `values`, or numeric intervals."""

    kind: str  # any | eq | ne | num
    values: frozenset[Any] = frozenset()
    intervals: tuple[Interval, ...] = ()

    def matches(self, v: Any) -> bool:
        if self.kind == "any":
            return True
        if self.kind == "eq":
            return _hashable(v) in self.values
        if self.kind == "ne":
            return _hashable(v) not in self.values
        number = _number(v)
        return number is not None and any(i.contains(number) for i in self.intervals)


def _hashable(v: Any) -> Any:
    try:
        hash(v)
    except TypeError:
        return repr(v)
    return v


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float, Decimal)):
        return None
    return float(v)


def parse_cell(raw: Any) -> Cell:
    """A cell as written in YAML; ValueError with a readable message when it cannot be read."""
    if isinstance(raw, list):
        values = []
        for item in raw:
            if isinstance(item, (list, dict)):
                raise ValueError("a list cell holds plain values")
            values.append(item)
        return Cell("eq", frozenset(values))
    if isinstance(raw, dict):
        raise ValueError("a cell is a value, a list, a comparison like \"> 5000\" or a range like \"[1..5]\"")
    if raw is None:
        return Cell("eq", frozenset({None}))
    if not isinstance(raw, str):
        return Cell("eq", frozenset({raw}))
    text = raw.strip()
    if text in _ANY:
        return Cell("any")
    match = _COMPARISON.match(text)
    if match:
        op, operand = match.groups()
        literal = _literal(operand)
        if op == "==":
            return Cell("eq", frozenset({literal}))
        if op == "!=":
            return Cell("ne", frozenset({literal}))
        number = _number(literal)
        if number is None:
            fix = separator_hint(operand) or amount_hint(operand)
            raise ValueError(f"'{op}' compares numbers; '{operand}' is not a number" + (f": {fix}" if fix else ""))
        interval = {"<": Interval(-INF, number, False, False), "<=": Interval(-INF, number, False, True),
                    ">": Interval(number, INF, False, False), ">=": Interval(number, INF, True, False)}[op]
        return Cell("num", intervals=(interval,))
    match = _RANGE.match(text)
    if match and ".." in text:
        opening, low, high, closing = match.groups()
        lo, hi = _number(_literal(low)), _number(_literal(high))
        if lo is None or hi is None:
            raise ValueError(f"'{text}' is not a range of numbers like [1000..5000)")
        if lo > hi:
            raise ValueError(f"the range '{text}' is empty: its start is after its end")
        return Cell("num", intervals=(Interval(lo, hi, opening != "(", closing != ")"),))
    return Cell("eq", frozenset({text}))


def _literal(text: str) -> Any:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


@dataclass
class _Input:
    """The regions of one input's values and each region's row mask."""

    name: str
    numeric: bool
    all_rows: int
    any_mask: int = 0
    # categorical
    table: dict[Any, int] = field(default_factory=dict)
    default: int = 0
    # numeric
    bounds: list[float] = field(default_factory=list)
    region_masks: list[int] = field(default_factory=list)
    none_mask: int = 0
    other_mask: int = 0

    def probe(self) -> Callable[[Any], int]:
        """A function value -> mask of the rows whose cell for this input holds."""
        if self.numeric:
            bounds, masks, null, other = self.bounds, self.region_masks, self.none_mask, self.other_mask
            # Money arrives as Decimal: comparing Decimal with float is slow, Decimal with
            # Decimal is not, so the bounds are kept both ways (as the analyst wrote them).
            exact = [Decimal(repr(b)) for b in bounds]
            left = bisect.bisect_left
            count = len(bounds)

            def numeric(v: Any) -> int:
                if v is None:
                    return null
                cls = v.__class__
                if cls is Decimal:
                    try:
                        i = left(exact, v)
                    except ArithmeticError:  # NaN cannot be ordered
                        return other
                    if i < count and exact[i] == v:
                        return masks[2 * i + 1]
                    return masks[2 * i]
                if cls is bool or not isinstance(v, (int, float, Decimal)):
                    return other
                i = left(bounds, v)
                if i < count and bounds[i] == v:
                    return masks[2 * i + 1]
                return masks[2 * i]
            return numeric
        lookup = self.fast_probe()
        default = self.default

        def categorical(v: Any) -> int:
            try:
                return lookup(v)
            except TypeError:  # an unhashable value (a list) equals no literal
                return default
        return categorical

    def fast_probe(self) -> Callable[[Any], int]:
        """`probe` without the guard for unhashable values (TypeError): for `_first_hit`."""
        if self.numeric:
            return self.probe()
        masks = _Masks(self.table)
        masks.default = self.default
        return masks.__getitem__

    def regions(self) -> list[tuple[str, int]]:
        """(description, mask) of every region, for the load checks."""
        if self.numeric:
            out = []
            b = self.bounds
            for i in range(len(b) + 1):
                lo = b[i - 1] if i > 0 else None
                hi = b[i] if i < len(b) else None
                if lo is None and hi is None:
                    text = "any number"
                elif lo is None:
                    text = f"< {_show(hi)}"
                elif hi is None:
                    text = f"> {_show(lo)}"
                else:
                    text = f"between {_show(lo)} and {_show(hi)}"
                out.append((text, self.region_masks[2 * i]))
                if i < len(b):
                    out.append((f"= {_show(b[i])}", self.region_masks[2 * i + 1]))
            return out
        out = [(repr(v) if isinstance(v, str) else str(v), m) for v, m in self.table.items()]
        if self.domain is None:
            out.append(("any other value", self.default))
        return out

    domain: list[Any] | None = None


def _show(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)


@dataclass(frozen=True)
class DecisionTable:
    """A compiled decision table; `decide(names)` returns its result for one record."""

    name: str
    label: Label
    form: str | None
    hit_policy: str
    inputs: tuple[tuple[str, Any], ...]
    """(input name, compiled expression or the field name when the input is a bare name)."""
    outputs: tuple[str, ...]
    rows: tuple[Mapping[str, Any], ...]
    probes: tuple[Callable[[Any], int], ...]
    all_rows: int
    conditions: Mapping[int, Any]
    """row index -> compiled `when` expression (rows with one)."""
    ranks: tuple[int, ...]
    span: Span
    fast: Callable[[Mapping[str, Any]], Any] | None = None
    """The whole decision as one closure, for first-hit tables over plain field names
    without `when` rows (the common case, and the hot one)."""

    def input_values(self, names: Mapping[str, Any], ctx: Any = None) -> tuple[Any, ...]:
        out = []
        for _, source in self.inputs:
            if isinstance(source, str):
                out.append(names.get(source))
            else:
                out.append(source.evaluate(names, ctx))
        return tuple(out)

    def matches(self, values: tuple[Any, ...], ctx: Any = None) -> list[int]:
        """Indexes of the rows matching `values`, in table order (`first` stops at one)."""
        mask = self.all_rows
        for probe, value in zip(self.probes, values):
            mask &= probe(value)
            if not mask:
                return []
        found = []
        conditions = self.conditions
        while mask:
            low = mask & -mask
            index = low.bit_length() - 1
            mask ^= low
            if conditions and index in conditions:
                named = {name: v for (name, _), v in zip(self.inputs, values)}
                if not conditions[index].evaluate(named, ctx):
                    continue
            found.append(index)
            if self.hit_policy == "first":
                break
        return found

    def decide(self, names: Mapping[str, Any], ctx: Any = None) -> Any:
        """The table's answer: one output's value (or a mapping of outputs), None when no row
        matches; a list of them under `collect`."""
        if self.fast is not None:
            return self.fast(names)
        values = self.input_values(names, ctx)
        return self.result(values, ctx)

    def result(self, values: tuple[Any, ...], ctx: Any = None) -> Any:
        found = self.matches(values, ctx)
        if self.hit_policy == "collect":
            return [self._output(i) for i in found]
        if not found:
            return None
        if self.hit_policy == "unique" and len(found) > 1:
            raise DecisionError(f"decision table '{self.name}': rows {found[0] + 1} and {found[1] + 1} "
                                "both match, but its hit policy is unique")
        if self.hit_policy == "priority":
            best = min(found, key=lambda i: (self.ranks[i], i))
            return self._output(best)
        return self._output(found[0])

    def _output(self, index: int) -> Any:
        row = self.rows[index]
        if len(self.outputs) == 1:
            return row[self.outputs[0]]
        return dict(row)


DECISION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["decision_table", "inputs", "outputs", "rows"],
    "additionalProperties": False,
    "properties": {
        "decision_table": {"type": "string", "pattern": NAME_PATTERN},
        "form": {"type": "string", "description": "inputs are expressions over this form's fields"},
        "label": LABEL_SCHEMA,
        "description": LABEL_SCHEMA,
        "hit_policy": {"enum": list(HIT_POLICIES)},
        "complete": {"type": "boolean", "description": "every combination of inputs must match a row"},
        "inputs": {"type": "object", "minProperties": 1, "propertyNames": {"pattern": NAME_PATTERN},
                   "additionalProperties": {"type": "string"}},
        "outputs": {"anyOf": [
            {"type": "array", "minItems": 1, "items": {"type": "string", "pattern": NAME_PATTERN}},
            {"type": "object", "minProperties": 1, "propertyNames": {"pattern": NAME_PATTERN},
             "additionalProperties": {"type": "object", "additionalProperties": False, "properties": {
                 "label": LABEL_SCHEMA,
                 "values": {"type": "array", "minItems": 1,
                            "description": "allowed values, highest priority first"}}}},
        ]},
        "rows": {"type": "array", "minItems": 1, "maxItems": 10_000, "items": {"type": "object"}},
    },
}


class DecisionTableKind:
    """The decision-table definition kind (folder `decisions/`)."""

    name = "decision_table"
    aliases: tuple[str, ...] = ()
    folder = "decisions"
    key = "decision_table"
    order = 30
    dispatch: tuple[Any, ...] = ()
    options_schema = DECISION_SCHEMA

    def build(self, doc: Document, ctx: BuildContext) -> DecisionTable | None:
        return build_table(doc, ctx)

    def check(self, bundle: Any, ctx: BuildContext) -> None:
        return None


def _check_output_option(doc: Document, ctx: BuildContext, path: YamlPath, output: str, value: Any,
                         form: Any) -> None:
    """An output named like a choice field of the form is written into it (the `decide` action's
    default), so its value must be one of the field's options: otherwise every record the row
    matches would fail that write at run time (an incident) instead of at load."""
    options = form.choice_values.get(output) if form is not None else None
    if options is None or value is None or (isinstance(value, str) and value in options):
        return
    if not isinstance(value, (str, bool)) and str(value) in options:
        hint = f'options are text: write "{value}"'
    else:
        hint = (label_hint(str(value), form.choice_values, output) or did_you_mean(str(value), sorted(options))
                or "options: " + ", ".join(sorted(options)[:12]))
    ctx.error(doc, path, f"{value!r} is not an option of the field '{output}'", code="decision-cell",
              hint=hint)


def build_table(doc: Document, ctx: BuildContext) -> DecisionTable | None:
    data = doc.data
    before = len(ctx.diags.errors)
    form_name = data.get("form")
    forms = ctx.definitions.get("form", {})
    form = forms.get(form_name) if form_name else None
    if form_name and form is None:
        ctx.unknown(doc, ("form",), "form", form_name, forms)
    names = scope_of(ctx, form_name) if form is not None else None
    raw_outputs = data["outputs"]
    outputs = tuple(raw_outputs) if isinstance(raw_outputs, list) else tuple(raw_outputs)
    priority_values = None
    if not isinstance(raw_outputs, list):
        priority_values = raw_outputs[outputs[0]].get("values")
    policy = data.get("hit_policy", "first")
    inputs: list[tuple[str, Any]] = []
    for name, source in data["inputs"].items():
        if name in outputs:
            ctx.error(doc, ("inputs", name), f"'{name}' is both an input and an output",
                      code="decision", at_key=True)
        text = source.strip()
        if form is not None and text in form.fields:
            inputs.append((name, text))
        elif form is None and not form_name and re.fullmatch(r"[a-z_][a-z0-9_]*", text):
            inputs.append((name, text))  # no form: inputs are names the caller passes
        else:
            inputs.append((name, compile_expr(ctx, doc, ("inputs", name), names)))
    input_names = [n for n, _ in inputs]
    if policy == "priority" and priority_values is None:
        ctx.error(doc, ("outputs",), "hit policy 'priority' needs the first output's `values`, "
                  "highest priority first", code="decision",
                  hint=f"outputs: {{{outputs[0]}: {{values: [high, medium, low]}}}}")
    rows: list[dict[str, Any]] = []
    cells: list[list[Cell]] = []
    conditions: dict[int, Any] = {}
    ranks: list[int] = []
    for i, row in enumerate(data["rows"]):
        rpath = ("rows", i)
        row_cells = []
        for key in row:
            if key not in input_names and key not in outputs and key not in ("when", "label"):
                ctx.error(doc, rpath + (key,), f"'{key}' is neither an input nor an output",
                          code="decision", at_key=True,
                          hint=did_you_mean(str(key), [*input_names, *outputs])
                          or "inputs: " + ", ".join(input_names) + "; outputs: " + ", ".join(outputs))
        for name in input_names:
            try:
                row_cells.append(parse_cell(row.get(name, "-")))
            except ValueError as exc:
                ctx.error(doc, rpath + (name,), str(exc), code="decision-cell")
                row_cells.append(Cell("any"))
        for out in outputs:
            if out not in row:
                ctx.error(doc, rpath, f"row {i + 1} gives no value for the output '{out}'",
                          code="decision", at_key=False)
            else:
                _check_output_option(doc, ctx, rpath + (out,), out, row[out], form)
        if "when" in row:
            conditions[i] = compile_expr(ctx, doc, rpath + ("when",), input_names)
        rank = 0
        if priority_values is not None and outputs[0] in row:
            if row[outputs[0]] in priority_values:
                rank = priority_values.index(row[outputs[0]])
            else:
                ctx.error(doc, rpath + (outputs[0],), f"{row[outputs[0]]!r} is not one of the values of "
                          f"'{outputs[0]}'", code="decision",
                          hint="values: " + ", ".join(map(str, priority_values)))
        ranks.append(rank)
        cells.append(row_cells)
        rows.append({o: row.get(o) for o in outputs})
    # The cells are checked against the inputs' options even after an error above (a bad
    # input expression, say), so that one run reports every problem of the table.
    columns = _columns(input_names, inputs, cells, form, doc, ctx)
    if columns is None or len(ctx.diags.errors) != before:
        return None
    all_rows = (1 << len(rows)) - 1
    table = DecisionTable(
        data["decision_table"], data.get("label", data["decision_table"]), form_name, policy,
        tuple(inputs), outputs, tuple(MappingProxyType(r) for r in rows),
        tuple(c.probe() for c in columns), all_rows,
        MappingProxyType({k: v for k, v in conditions.items() if v is not None}), tuple(ranks),
        doc.span(()))
    if policy == "first" and not table.conditions and all(isinstance(src, str) for _, src in inputs):
        object.__setattr__(table, "fast", _first_hit(table, tuple(c.fast_probe() for c in columns)))
    if policy == "unique":
        _check_overlaps(columns, all_rows, set(conditions), doc, ctx)
    if data.get("complete"):
        _check_gaps(columns, all_rows, set(conditions), doc, ctx)
    return table


class _Masks(dict):  # type: ignore[type-arg]
    """value -> row mask; a value no cell names gets the default mask (without being stored)."""

    __slots__ = ("default",)

    def __missing__(self, key: Any) -> int:
        return self.default  # type: ignore[no-any-return]


def _first_hit(table: DecisionTable, probes: tuple[Callable[[Any], int], ...]) -> Callable[[Mapping[str, Any]], Any]:
    """`decide` for a first-hit table over field names: one probe per input (a dict lookup for
    literal cells, a bisect for ranges), an AND, then the lowest set bit. Unhashable values
    (a list from a multi-select) take the general path."""
    keys = tuple(src for _, src in table.inputs)
    single = len(table.outputs) == 1
    answers = tuple(row[table.outputs[0]] if single else dict(row) for row in table.rows)
    if not single:
        answers = tuple(_Answer(a) for a in answers)  # type: ignore[arg-type]
    all_rows = table.all_rows
    slow = table.result
    values = table.input_values

    def answer(mask: int) -> Any:
        found = answers[(mask & -mask).bit_length() - 1]
        return found if single else dict(found)

    if len(keys) == 1:
        (k0,), (p0,) = keys, probes

        def first1(names: Mapping[str, Any]) -> Any:
            try:
                mask = p0(names.get(k0))
            except TypeError:
                return slow(values(names))
            return answer(mask) if mask else None
        return first1
    if len(keys) == 2:
        k0, k1 = keys
        p0, p1 = probes

        def first2(names: Mapping[str, Any]) -> Any:
            get = names.get
            try:
                mask = p0(get(k0)) & p1(get(k1))
            except TypeError:
                return slow(values(names))
            return answer(mask) if mask else None
        return first2
    if len(keys) == 3:
        k0, k1, k2 = keys
        p0, p1, p2 = probes

        def first3(names: Mapping[str, Any]) -> Any:
            get = names.get
            try:
                mask = p0(get(k0)) & p1(get(k1)) & p2(get(k2))
            except TypeError:
                return slow(values(names))
            if not mask:
                return None
            found = answers[(mask & -mask).bit_length() - 1]
            return found if single else dict(found)
        return first3
    pairs = tuple(zip(keys, probes))

    def first_n(names: Mapping[str, Any]) -> Any:
        mask = all_rows
        get = names.get
        try:
            for key, probe in pairs:
                mask &= probe(get(key))
                if not mask:
                    return None
        except TypeError:
            return slow(values(names))
        return answer(mask)
    return first_n


class _Answer(dict):  # type: ignore[type-arg]
    """A row's outputs, copied for each caller."""


def _columns(input_names: list[str], inputs: list[tuple[str, Any]], cells: list[list[Cell]],
             form: Any, doc: Document, ctx: BuildContext) -> list[_Input] | None:
    all_rows = (1 << len(cells)) - 1
    columns = []
    for j, name in enumerate(input_names):
        column = [row[j] for row in cells]
        numeric = any(c.kind == "num" for c in column)
        info = _Input(name, numeric, all_rows)
        for i, cell in enumerate(column):
            if cell.kind == "any":
                info.any_mask |= 1 << i
        source = inputs[j][1]
        if numeric:
            intervals: list[list[Interval]] = []
            null_mask = other_mask = info.any_mask
            for i, cell in enumerate(column):
                bit = 1 << i
                if cell.kind in ("eq", "ne"):
                    values = [v for v in cell.values if v is not None]
                    numbers = [_number(v) for v in values]
                    if any(n is None for n in numbers):
                        bad = next(v for v in values if _number(v) is None)
                        ctx.error(doc, ("rows", i, name), f"the input '{name}' is compared as a number "
                                  f"in other rows; {bad!r} is not a number", code="decision-cell")
                        return None
                    if cell.kind == "eq":
                        intervals.append([Interval(n, n, True, True) for n in numbers if n is not None])
                        if None in cell.values:
                            null_mask |= bit
                    else:
                        cut = sorted(n for n in numbers if n is not None)
                        edges = [-INF, *cut, INF]
                        intervals.append([Interval(a, b, False, False) for a, b in zip(edges, edges[1:])])
                        other_mask |= bit  # text is never one of the excluded numbers
                        if None not in cell.values:
                            null_mask |= bit
                elif cell.kind == "num":
                    intervals.append(list(cell.intervals))
                else:
                    intervals.append([])
            bounds = sorted({x for ivs in intervals for iv in ivs for x in (iv.low, iv.high)
                             if x not in (INF, -INF)})
            info.bounds = bounds
            reps: list[float] = []
            for k in range(len(bounds) + 1):
                lo = bounds[k - 1] if k > 0 else None
                hi = bounds[k] if k < len(bounds) else None
                if lo is None and hi is None:
                    reps.append(0.0)
                elif lo is None:
                    reps.append(hi - 1)  # type: ignore[operator]
                elif hi is None:
                    reps.append(lo + 1)
                else:
                    reps.append((lo + hi) / 2)
                if k < len(bounds):
                    reps.append(bounds[k])
            for rep in reps:
                mask = info.any_mask
                for i, ivs in enumerate(intervals):
                    if any(iv.contains(rep) for iv in ivs):
                        mask |= 1 << i
                info.region_masks.append(mask)
            info.none_mask = null_mask
            info.other_mask = other_mask
        else:
            literals: set[Any] = set()
            for cell in column:
                literals |= set(cell.values)
            domain = None
            if form is not None and isinstance(source, str):
                spec = form.fields.get(source)
                choices = getattr(spec, "choices", None)
                if choices is not None:
                    domain = sorted(choices.values())
                    groups = getattr(form.choice_values.get(source), "groups", {})
                    for i, cell in enumerate(column):
                        for value in cell.values:
                            if value is not None and str(value) in groups:  # records hold the last level
                                ctx.error(doc, ("rows", i, name), f"{value!r} is a group of '{source}': a record "
                                          "holds the last level under it, so this row could never match",
                                          code="decision-cell",
                                          hint=f"write the values under it: [{', '.join(groups[str(value)])}]")
                                return None
                            if value is not None and str(value) not in domain:
                                labelled = {source: Options(domain, choices.labels())}
                                ctx.error(doc, ("rows", i, name), f"{value!r} is not an option of the "
                                          f"field '{source}'", code="decision-cell",
                                          hint=label_hint(str(value), labelled, source)
                                          or did_you_mean(str(value), domain))
                                return None
                    literals |= set(domain)
            info.domain = domain
            ne_mask = 0
            for i, cell in enumerate(column):
                if cell.kind == "ne":
                    ne_mask |= 1 << i
            info.default = info.any_mask | ne_mask
            for value in literals:
                mask = info.any_mask
                for i, cell in enumerate(column):
                    if cell.matches(value):
                        mask |= 1 << i
                info.table[value] = mask
        columns.append(info)
    return columns


def _combinations(columns: list[_Input], start: int, prune: Callable[[int], bool],
                  visit: Callable[[int, list[str]], bool]) -> bool:
    """Depth-first over the regions of every input; `prune(mask)` skips a branch, `visit` gets
    each full combination (return False to stop). Returns False when cut off by the cap."""
    budget = [MAX_CHECKED_COMBINATIONS]

    def walk(j: int, mask: int, picked: list[str]) -> bool:
        if budget[0] <= 0:
            return False
        if j == len(columns):
            budget[0] -= 1
            return visit(mask, picked)
        for text, region in columns[j].regions():
            narrowed = mask & region
            if prune(narrowed):
                continue
            if not walk(j + 1, narrowed, picked + [f"{columns[j].name} {text}"]):
                return False
        return True

    return walk(0, start, [])


def _check_overlaps(columns: list[_Input], all_rows: int, conditional: set[int], doc: Document,
                    ctx: BuildContext) -> None:
    plain = all_rows & ~sum(1 << i for i in conditional)
    reported: set[tuple[int, int]] = set()

    def visit(mask: int, picked: list[str]) -> bool:
        rows = [i for i in range(mask.bit_length()) if mask >> i & 1]
        for a_index, a in enumerate(rows):
            for b in rows[a_index + 1:]:
                if (a, b) not in reported:
                    reported.add((a, b))
                    ctx.error(doc, ("rows", b), f"rows {a + 1} and {b + 1} overlap, but the hit policy "
                              f"is unique: both match {', '.join(picked) or 'every record'}",
                              code="decision-overlap",
                              hint="narrow one of the rows, or use hit_policy: first")
        return len(reported) < 20

    _combinations(columns, plain, lambda m: m & (m - 1) == 0, visit)


def _check_gaps(columns: list[_Input], all_rows: int, conditional: set[int], doc: Document,
                ctx: BuildContext) -> None:
    # A row with a `when` condition may not hold, so it cannot close a gap.
    plain = all_rows & ~sum(1 << i for i in conditional)
    gaps: list[str] = []
    budget = [MAX_CHECKED_COMBINATIONS]

    def walk(j: int, mask: int, picked: list[str]) -> None:
        budget[0] -= 1
        if len(gaps) >= 5 or budget[0] <= 0:
            return
        if mask == 0:
            gaps.append(", ".join(picked) + (", any other inputs" if j < len(columns) else ""))
            return
        if j == len(columns):
            return
        for text, region in columns[j].regions():
            walk(j + 1, mask & region, picked + [f"{columns[j].name} {text}"])

    walk(0, plain, [])
    for gap in gaps:
        ctx.error(doc, ("complete",), f"no row matches {gap}, but the table says it is complete",
                  code="decision-gap", hint="add a row for these inputs, or a last row with only outputs")
