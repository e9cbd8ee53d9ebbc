"""Print templates load with every mistake reported at its file:line:col (templates/*.yaml and
the HTML it names), including unsafe constructs (RELIABILITY 11-14) and unknown fields."""

from __future__ import annotations

from pathlib import Path

from engine.bundle import validate_bundle
from tests.engine.bundle_kit import problems, write_bundle
from web.system import build_registry

LETTER_YAML = """\
    template: letter
    label: {zh-CN: 答复函, en: Letter}
    form: ticket
    html: letter.html
    stylesheets: [letter.css]
    values:
      company: {zh-CN: 邮政公司, en: Postal company}
    """
LETTER_HTML = "<h1>{{ values.company }}</h1>\n<p>{{ record.title }} {{ fields.amount.text }}</p>\n"


def letter(**files: str | None) -> dict[str, str | None]:
    base: dict[str, str | None] = {"templates/letter.yaml": LETTER_YAML, "templates/letter.html": LETTER_HTML,
                                   "templates/letter.css": "h1 { color: red; }"}
    return {**base, **{k.replace("__", "/").replace("_dot_", "."): v for k, v in files.items()}}


def test_a_valid_print_template_loads(tmp_path: Path):
    write_bundle(tmp_path, letter())
    bundle, diags = validate_bundle(tmp_path, build_registry(plugins=False))
    assert bundle is not None, diags
    spec = bundle.get("template", "letter")
    assert (spec.form, spec.html, spec.stylesheets, spec.paper) == ("ticket", "letter.html", ("letter.css",), "A4")
    assert spec.text("zh-CN") == "答复函"


def test_an_unknown_form_is_reported_with_a_hint(tmp_path: Path):
    found = problems(tmp_path, letter(templates__letter_dot_yaml=LETTER_YAML.replace("form: ticket", "form: tickt")))
    assert found == [("templates/letter.yaml", 3, 7, "unknown form 'tickt'")]


def test_a_missing_html_file_is_reported_at_its_name(tmp_path: Path):
    found = problems(tmp_path, letter(templates__letter_dot_html=None))
    assert found == [("templates/letter.yaml", 4, 7, "unknown template file 'letter.html'")]


def test_an_html_file_outside_the_templates_folder_is_refused(tmp_path: Path):
    yaml = LETTER_YAML.replace("html: letter.html", "html: ../forms/ticket.yaml")
    [(file, line, col, message)] = problems(tmp_path, letter(templates__letter_dot_yaml=yaml))
    assert (file, line, col) == ("templates/letter.yaml", 4, 7) and "'..'" in message


def test_an_unknown_field_in_the_html_is_reported_where_it_is_written(tmp_path: Path):
    html = "<p>\n  {{ record.titel }}</p>\n"
    [(file, line, col, message)] = problems(tmp_path, letter(templates__letter_dot_html=html))
    assert (file, line, col) == ("templates/letter.html", 2, 6)
    assert "unknown field 'titel'" in message


def test_an_unknown_value_is_reported(tmp_path: Path):
    [(_f, _l, _c, message)] = problems(tmp_path, letter(templates__letter_dot_html="{{ values.hotline }}"))
    assert "unknown value 'hotline'" in message


def test_a_sandbox_escape_in_the_html_is_refused_at_load(tmp_path: Path):
    html = "<p>{{ record.__class__ }}</p>"
    [(file, line, col, message)] = problems(tmp_path, letter(templates__letter_dot_html=html))
    assert (file, line, col) == ("templates/letter.html", 1, 13) and "__class__" in message


def test_safe_on_a_record_field_is_refused_at_load(tmp_path: Path):
    html = "<p>\n{{ record.title|safe }}</p>"
    [(file, line, col, message)] = problems(tmp_path, letter(templates__letter_dot_html=html))
    assert (file, line, col) == ("templates/letter.html", 2, 16) and "stored XSS" in message


def test_an_include_from_data_or_outside_the_bundle_is_refused_at_load(tmp_path: Path):
    html = "{% include record.title %}\n{% include '../bundle.yaml' %}"
    found = problems(tmp_path, letter(templates__letter_dot_html=html))
    assert [(f, line) for f, line, _c, _m in found] == [("templates/letter.html", 1), ("templates/letter.html", 2)]


def test_a_template_syntax_error_is_positioned_in_the_html(tmp_path: Path):
    html = "<p>ok</p>\n<p>{% if record.title %}open</p>\n"
    [(file, line, _col, message)] = problems(tmp_path, letter(templates__letter_dot_html=html))
    assert (file, line) == ("templates/letter.html", 2) and "endif" in message


def test_an_asset_that_is_not_in_the_templates_folder_is_reported(tmp_path: Path):
    html = "<img src=\"{{ asset('logo.svg') }}\">"
    [(file, line, col, message)] = problems(tmp_path, letter(templates__letter_dot_html=html))
    assert (file, line, col) == ("templates/letter.html", 1, 21) and "asset 'logo.svg'" in message


def test_a_bad_margin_and_an_unknown_role_are_reported(tmp_path: Path):
    yaml = LETTER_YAML.rstrip(" ") + "    margin: 2 cm\n    roles: [agnet]\n"
    found = problems(tmp_path, letter(templates__letter_dot_yaml=yaml))
    assert [(line, message.split(":")[0]) for _f, line, _c, message in found] == [
        (8, "'2 cm' is not a margin"), (9, "unknown role 'agnet'")]


def test_the_file_name_template_is_checked_inside_the_yaml(tmp_path: Path):
    yaml = LETTER_YAML.rstrip(" ") + "    filename: \"letter-{{ record.query_no|nosuch }}\"\n"
    [(file, line, col, message)] = problems(tmp_path, letter(templates__letter_dot_yaml=yaml))
    assert (file, line, col) == ("templates/letter.yaml", 8, 38) and "unknown filter 'nosuch'" in message


def test_the_postal_reply_letter_loads():
    from tests.reports.print_kit import POSTAL

    bundle, diags = validate_bundle(POSTAL, build_registry(plugins=False))
    assert bundle is not None, diags
    assert bundle.get("template", "reply_letter").form == "complaint"
