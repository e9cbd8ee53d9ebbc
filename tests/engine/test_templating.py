"""Analyst templates render in a sandbox that holds (RELIABILITY.md tests 11-14).

11: no way to Python internals; 12: no resource bombs (each stopped within 2 s, the process
goes on serving); 13: includes confined to the bundle's templates; 14: escaping, and `|safe` on
data refused at load.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest

from engine.errors import Diagnostics
from engine.kinds import BuildContext
from engine.registry import Registry
from engine.templating import (
    MAX_OUTPUT_CHARS,
    TemplateLoadError,
    TemplateRenderError,
    compile_in_document,
    compile_template,
)
from engine.yamlsource import load_yaml

HOSTILE = '"><img src=x onerror=alert(1)>'


def load_problems(source: str, **options) -> list[tuple[int, int, str, str]]:
    with pytest.raises(TemplateLoadError) as caught:
        compile_template(source, name="letter.html", html=True, **options)
    return [(p.line, p.col, p.code, p.message) for p in caught.value.problems]


def render_error(source: str, context: dict | None = None, **options) -> TemplateRenderError:
    template = compile_template(source, name="letter.html", html=True, **options)
    with pytest.raises(TemplateRenderError) as caught:
        template.render(context or {})
    return caught.value


def test_a_template_renders_its_context_with_the_formatting_helpers():
    template = compile_template("{{ name }}: {{ amount|money }} ({{ 0.5|number(1) }})",
                                name="t.txt", html=False)
    assert template.render({"name": "张三", "amount": 12345.5}) == "张三: ¥12,345.50 (0.5)"


def test_date_shows_an_aware_time_in_the_bundles_zone():
    template = compile_template("{{ at|date('%Y年%m月%d日 %H:%M') }}", name="t.txt", html=False,
                                timezone="Asia/Shanghai")
    assert template.render({"at": datetime(2026, 11, 23, 17, 30, tzinfo=timezone.utc)}) == "2026年11月24日 01:30"


def test_empty_values_format_as_empty_text():
    template = compile_template("[{{ a|money }}|{{ b|date }}|{{ c|number(1) }}]", name="t.txt", html=False)
    assert template.render({"a": None, "b": None, "c": ""}) == "[||]"


def test_a_decimal_overflow_is_a_clear_error():
    error = render_error("{{ amount ** 1000000 }}", {"amount": Decimal("5200.50")})
    assert error.message == "a number is too large" and error.line == 1


# ---------------------------------------------------------------- 11: internals


@pytest.mark.parametrize(("source", "attribute", "col"), [
    ("{{ ''.__class__.__mro__ }}", "__class__", 6),
    ("{{ self.__init__.__globals__ }}", "__init__", 8),
    ("{{ 'x'.format(1) }}", "format", 7),
    ("{{ x['__class__'] }}", "__class__", 7),
])
def test_attributes_of_python_internals_are_refused_at_load_with_their_position(source, attribute, col):
    problems = load_problems(source)
    assert (1, col, "template-unsafe") in [(line, c, code) for line, c, code, _ in problems]
    assert any(attribute in message for *_, message in problems)


@pytest.mark.parametrize("source", ["{{ x|attr('__class__') }}", "{{ 'x'|attr('format') }}"])
def test_the_attr_filter_is_refused_at_load(source):
    [(line, col, code, message)] = load_problems(source)
    assert (line, code) == (1, "template-unsafe")
    assert "'attr' filter is not available" in message


def test_an_internal_attribute_of_a_value_is_refused_at_run_time_too():
    """A value's attribute reached through a dict key computed at run time, which the load
    check cannot see, still fails cleanly instead of leaking."""
    error = render_error("{{ x[key] }}", {"x": "text", "key": "__class__"})
    assert error.message == "refused: access to attribute '__class__' of 'str' object is unsafe."
    assert error.line == 1


def test_mutating_a_value_is_refused():
    error = render_error("{{ items.append(1) }}", {"items": [1]})
    assert error.line == 1 and "unsafe" in error.message


# ---------------------------------------------------------------- 12: resource bombs


def stopped_quickly(source: str, *, within: float = 2.0, **options) -> TemplateRenderError:
    started = time.monotonic()
    error = render_error(source, **options)
    assert time.monotonic() - started < within
    return error


def test_lipsum_is_not_available():
    assert "'lipsum' is undefined" in stopped_quickly("{{ lipsum(10**6) }}").message


def test_a_huge_range_is_refused():
    assert "range() of 100,000 numbers" in stopped_quickly(
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}").message


def test_nested_loops_that_print_nothing_are_stopped_by_the_time_budget():
    error = stopped_quickly(
        "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}")
    assert "longer than 1 s" in error.message and error.line == 1


def test_the_time_budget_can_be_set_per_template():
    error = stopped_quickly(
        "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
        within=1.5, time_limit=0.3)
    assert "longer than 0.3 s" in error.message


def test_quick_renders_leave_the_watchdog_thread_asleep(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each wake-up hands the watchdog thread the GIL: a rule's message paid ~40 us for it.
    from engine import templating

    wakes = []
    condition = templating._WATCHDOG._cond
    monkeypatch.setattr(condition, "notify", lambda n=1: wakes.append(n) or threading.Condition.notify(condition, n))
    template = compile_template("{{ name }}", name="ack.txt", html=False)
    for i in range(50):
        assert template.render({"name": str(i)}) == str(i)
    assert len(wakes) <= 1  # only when no earlier deadline was pending


def test_nested_loops_that_print_are_stopped_by_the_output_cap():
    # A generous time budget: on a busy machine the budget must not win the race.
    error = stopped_quickly(
        "{% for i in range(10000) %}{% for j in range(10000) %}x{% endfor %}{% endfor %}",
        within=20, time_limit=20)
    assert f"longer than {MAX_OUTPUT_CHARS:,} characters" in error.message


def test_a_recursive_macro_is_a_clear_error():
    error = stopped_quickly("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(1) }}")
    assert "calls itself too deeply" in error.message


@pytest.mark.parametrize("source", [
    "{{ 'a' * 10**9 }}",
    "{{ ['a'] * 10**9 }}",
    "{{ 'a'|center(10**9) }}",
    "{{ 'a'.center(10**9) }}",
    "{{ 'a'.ljust(10**9) }}",
    "{{ '%0300000000d' % 1 }}",
    "{{ '%0300000000d'|format(1) }}",
    "{{ 9 ** (9 ** 9) }}",
    "{{ ('a' * 1000)|replace('a', 'a' * 1000) }}",
    "{{ range(10000)|join('a' * 1000) }}",
    "{{ [1]|batch(10**9, 'x')|list }}",
    "{{ 'a b'|wordwrap(1, wrapstring='x' * 100000) }}",
    "{{ 'a'|indent(10**9) }}",
    "{% macro f(s, n) %}{{ f(s ~ s, n - 1) if n else s|length }}{% endmacro %}{{ f('ab', 40) }}",
    "{{ ('\\t' * 100000).expandtabs(1000)|length }}",
    "{% macro f(n) %}{% if n %}{% set s = f(n - 1) %}{{ s }}{{ s }}{% else %}xx{% endif %}{% endmacro %}"
    "{{ f(40)|length }}",
    "{% macro f(n) %}{% if n %}{% set s %}{{ f(n - 1) }}{% endset %}{{ s }}{{ s }}{% else %}xx{% endif %}"
    "{% endmacro %}{{ f(40)|length }}",
])
def test_operators_filters_and_methods_that_build_huge_values_are_refused_before_allocating(source):
    assert "refused" in stopped_quickly(source).message


@pytest.mark.parametrize("source", ["{{ (10).to_bytes(10**9, 'big')|length }}", "{{ 'a'.encode() }}",
                                    "{{ 'x'.maketrans('a', 'b') }}", "{{ d.fromkeys('ab') }}"])
def test_methods_outside_the_allow_list_are_refused(source):
    assert "is not allowed in templates" in render_error(source, {"d": {}}).message


def test_ordinary_methods_of_text_lists_dicts_and_dates_work():
    source = ("{{ 'A-B'.lower().replace('-', '_') }} {{ 'a,b'.split(',')|join('+') }} {{ d.get('x') }} "
              "{{ l.index(2) }} {{ at.strftime('%Y-%m') }} {{ at.isoformat() }}")
    out = compile_template(source, name="t.txt", html=False).render(
        {"d": {"x": 1}, "l": [1, 2], "at": datetime(2026, 11, 23)})
    assert out == "a_b a+b 1 1 2026-11 2026-11-23T00:00:00"


@pytest.mark.parametrize("printed", ["l", "l|tojson", "l|string", "l ~ ''", "'%s' % (l,)", "[l]|sum(start=[])|length"])
def test_a_list_nested_into_itself_is_refused_before_it_is_printed(printed):
    """A macro can nest one list 2^40 times in a few lines; str() of it would expand every copy
    in C code that no time budget interrupts. Its size is weighed first."""
    source = ("{% macro f(l, n) %}{% if n %}{{ f([l, l], n - 1) }}{% else %}{{ " + printed +
              " }}{% endif %}{% endmacro %}{{ f([1], 40) }}")
    assert "refused" in stopped_quickly(source).message


def test_a_shared_list_of_ordinary_size_prints():
    source = "{% set l = [1, 2] %}{% set t = [l, l, l] %}{{ t }} {{ t|tojson }} {{ t|length }}"
    assert compile_template(source, name="t.txt", html=False).render({}) == (
        "[[1, 2], [1, 2], [1, 2]] [[1, 2], [1, 2], [1, 2]] 3")


def test_the_process_keeps_serving_after_a_stopped_render():
    """The watchdog's interrupt is spent: the thread renders and runs normally afterwards."""
    stopped_quickly("{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
                    time_limit=0.2)
    template = compile_template("{{ n * 2 }}", name="ok.txt", html=False)
    assert [template.render({"n": n}) for n in range(3)] == ["0", "2", "4"]
    end = time.monotonic() + 0.3  # run Python code past the earlier budget: no stray interrupt
    spins = 0
    while time.monotonic() < end:
        spins += 1
    assert spins > 0


def test_a_render_in_another_thread_is_stopped_without_touching_this_one():
    template = compile_template(
        "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
        name="slow.txt", html=False, time_limit=0.2)
    errors: list[Exception] = []

    def work() -> None:
        try:
            template.render({})
        except TemplateRenderError as exc:
            errors.append(exc)

    worker = threading.Thread(target=work)
    worker.start()
    worker.join(10)
    assert not worker.is_alive() and len(errors) == 1
    assert compile_template("{{ 1 + 1 }}", name="t.txt", html=False).render({}) == "2"


# ---------------------------------------------------------------- 13: includes confined


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    root = tmp_path / "bundle" / "templates"
    (root / "parts").mkdir(parents=True)
    (root / "parts" / "header.html").write_text("<h1>{{ company }}</h1>", "utf-8")
    other = tmp_path / "other_bundle" / "templates"
    other.mkdir(parents=True)
    (other / "secret.html").write_text("secret", "utf-8")
    (tmp_path / "passwd").write_text("root:x:0:0", "utf-8")
    return root


def test_an_include_by_constant_name_inside_the_templates_folder_works(templates):
    template = compile_template("{% include 'parts/header.html' %}", name="letter.html",
                                html=True, loader_root=templates)
    assert template.render({"company": "A&B"}) == "<h1>A&amp;B</h1>"


@pytest.mark.parametrize("target", ["../../etc/passwd", "../passwd", "/etc/passwd",
                                    "../../other_bundle/templates/secret.html", "C:/windows/win.ini"])
def test_an_include_outside_the_templates_folder_is_refused_at_load(templates, target):
    [(line, _col, code, message)] = load_problems(f"{{% include '{target}' %}}", loader_root=templates)
    assert (line, code) == (1, "template-unsafe")
    assert target in message


def test_an_include_whose_name_comes_from_data_is_refused(templates):
    [(_l, _c, code, message)] = load_problems("{% include record.template %}", loader_root=templates)
    assert code == "template-unsafe" and "not one computed from data" in message


def test_an_include_of_a_missing_template_is_refused_with_a_hint(templates):
    [(_l, col, code, message)] = load_problems("x\n  {% include 'parts/heder.html' %}",
                                               loader_root=templates)
    assert (code, col) == ("template-not-found", 15) and "'parts/heder.html'" in message


def test_a_symlink_out_of_the_templates_folder_is_not_followed(templates):
    (templates / "link.html").symlink_to(templates.parent.parent / "passwd")
    [(_l, _c, code, _m)] = load_problems("{% include 'link.html' %}", loader_root=templates)
    assert code == "template-not-found"


def test_without_a_loader_nothing_can_be_included():
    [(_l, _c, code, _m)] = load_problems("{% include 'header.html' %}")
    assert code == "template-not-found"


def test_an_included_template_is_checked_too(templates):
    (templates / "parts" / "bad.html").write_text("{{ x.__class__ }}", "utf-8")
    [(_l, _c, code, message)] = load_problems("{% include 'parts/bad.html' %}", loader_root=templates)
    assert code == "template-unsafe" and "in 'parts/bad.html' line 1" in message


def test_templates_can_come_from_the_bundles_loaded_files():
    template = compile_template("{% import 'm.html' as m %}{{ m.hi('x') }}", name="a.html",
                                html=True, files={"m.html": "{% macro hi(n) %}hi {{ n }}{% endmacro %}"})
    assert template.render({}) == "hi x"


# ---------------------------------------------------------------- 14: escaping and |safe


def test_a_hostile_answer_is_escaped_in_an_html_template():
    out = compile_template("<p>{{ answer }}</p>", name="letter.html", html=True).render({"answer": HOSTILE})
    assert "<img" not in out and "&lt;img src=x onerror=alert(1)&gt;" in out


def test_a_plain_text_template_is_not_html_escaped():
    out = compile_template("{{ answer }}", name="sms.txt", html=False).render({"answer": "A & B"})
    assert out == "A & B"


@pytest.mark.parametrize(("source", "described"), [
    ("<p>\n  {{ record.answer|safe }}</p>", "record.answer"),
    ("<p>\n  {{ answer|e|safe }}</p>", "answer|e"),
])
def test_safe_on_a_record_field_is_refused_at_load(source, described):
    [(line, col, code, message)] = load_problems(source)
    assert (line, col, code) == (2, source.splitlines()[1].index("|safe") + 1, "template-unsafe")
    assert described in message and "stored XSS" in message


def test_safe_on_a_constant_is_allowed():
    assert compile_template("{{ '<br>'|safe }}", name="t.html", html=True).render({}) == "<br>"


def test_autoescape_false_is_refused_at_load():
    [(_l, _c, code, _m)] = load_problems("{% autoescape false %}{{ answer }}{% endautoescape %}")
    assert code == "template-unsafe"


# ---------------------------------------------------------------- load errors and positions


def test_a_syntax_error_is_positioned():
    [(line, col, code, message)] = load_problems("<p>\n{{ name }\n</p>")
    assert (line, code) == (2, "template-syntax") and col >= 1 and message


def test_every_problem_is_reported_at_once():
    problems = load_problems("{{ a.__class__ }}\n{{ b|safe }}\n{{ c|nosuch }}")
    assert [(line, code) for line, _c, code, _m in problems] == [
        (1, "template-unsafe"), (2, "template-unsafe"), (3, "template-invalid")]


def test_unknown_names_are_refused_when_the_names_are_given():
    [(line, col, code, message)] = load_problems("{{ query_no }} {{ custmer }}",
                                                 names={"query_no", "customer"})
    assert (line, col, code) == (1, 19, "template-unknown-name")
    assert "'custmer'" in message


def test_a_missing_name_fails_at_render_with_its_line():
    error = render_error("a\n{{ missing }}")
    assert (error.name, error.line) == ("letter.html", 2) and "'missing' is undefined" in error.message


def test_a_template_in_a_yaml_scalar_reports_positions_inside_the_file():
    diags = Diagnostics()
    doc = load_yaml("rule: r\nnotify:\n  body: |\n    Hello\n    {{ x.__class__ }}\n", "rules/r.yaml", diags)
    ctx = BuildContext(Registry(), diags)
    assert compile_in_document(ctx, doc, ("notify", "body"), html=False) is None
    [diag] = diags.errors
    assert (diag.span.file, diag.span.line, diag.span.col) == ("rules/r.yaml", 5, 9)
    assert "'__class__'" in diag.message


def test_a_template_in_a_yaml_scalar_shows_dates_in_the_bundles_zone():
    diags = Diagnostics()
    doc = load_yaml("body: \"{{ at|date('%H:%M') }}\"\n", "rules/r.yaml", diags)
    ctx = BuildContext(Registry(), diags, meta=SimpleNamespace(timezone="Asia/Shanghai"))
    template = compile_in_document(ctx, doc, ("body",), html=False)
    assert template.render({"at": datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)}) == "10:00"
