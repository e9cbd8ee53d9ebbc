"""Each built-in field type: a valid value parses to what is stored, an invalid one is refused
with the right message key, and values read well in the user's language."""

from __future__ import annotations

import logging
import re
from datetime import date, datetime, time, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from engine.errors import ValidationFailed
from forms.compile import CompiledForm
from forms.messages import MESSAGES, FieldInvalid
from tests.forms import boot_gallery, data_url, tiny_png
from web.system import System, build_registry

PNG = data_url(tiny_png())

VALID: list[tuple[str, Any, Any]] = [
    ("text", "  Hello  ", "Hello"),
    ("coded", "AB123", "AB123"),
    ("textarea", "line one\r\nline two", "line one\nline two"),
    ("textarea", "a\tb", "a\tb"),  # a tab is text, not a control to refuse
    ("rich_text", "<p>Hi <b>you</b><script>steal()</script></p>", "<p>Hi you</p>"),
    ("hidden", "qr_poster", "qr_poster"),
    ("phone", "138 1234 5678", "13812345678"),
    ("phone", "１３８１２３４５６７８", "13812345678"),  # a Chinese input method's full-width mode
    ("phone", "（０２１）１２３４５６７８", "02112345678"),
    ("email", "chen@example.com", "chen@example.com"),
    ("email", "ｃｈｅｎ＠ｅｘａｍｐｌｅ．ｃｏｍ　", "chen@example.com"),  # typed in full-width mode
    ("url", "https://example.com/track?no=SF1", "https://example.com/track?no=SF1"),
    ("id_number", "11010519491231002x", "11010519491231002X"),
    ("credit_code", "91350100M000100Y43", "91350100M000100Y43"),
    ("waybill", "sf1234567890", "SF1234567890"),
    ("waybill", "ＳＦ１２３４５６７８９０　", "SF1234567890"),  # typed in full-width mode
    ("contract", "HT-2026", "HT-2026"),
    ("number", "1,234.5", 1234.5),
    ("integer", "42", 42),
    ("money", "¥1,234.5", Decimal("1234.50")),
    ("percent", "12.5%", Decimal("12.50")),
    ("rating", "4", 4),
    ("select", "high", "high"),
    ("radio", "email", "email"),
    ("multiselect", "late, lost", ["late", "lost"]),
    ("checkboxes", ["morning", "evening"], ["morning", "evening"]),
    ("cascade", "pudong", "pudong"),
    ("region", "east", "east"),
    ("boolean", "yes", True),
    ("date", "2026-11-20", date(2026, 11, 20)),
    ("datetime", "2026-11-20 10:30", datetime(2026, 11, 20, 2, 30, tzinfo=timezone.utc)),
    ("date", "2026/11/20", date(2026, 11, 20)),  # year first, as a spreadsheet cell of text may have it
    ("date", "2026年11月20日", date(2026, 11, 20)),
    ("datetime", "2026/11/20 9:30", datetime(2026, 11, 20, 1, 30, tzinfo=timezone.utc)),
    ("time", "9:30", time(9, 30)),
    ("duration", "1h 30m", 5400),
    ("owner", "zhao.li", "zhao.li"),
    ("role", "agent", "agent"),
    ("department", "hotline", "hotline"),
    ("reference", "#12", 12),
    ("location", {"address": " 上海市浦东新区 ", "lat": 31.2304, "lng": "121.4737"},
     {"address": "上海市浦东新区", "lat": 31.2304, "lng": 121.4737}),
    ("signature", PNG, PNG),
    ("subtable", [{"number": "sf1234567890", "note": "late", "fee": "12.5", "shipped": "2026-11-20"}],
     [{"number": "SF1234567890", "note": "late", "fee": "12.50", "shipped": "2026-11-20"}]),
]

INVALID: list[tuple[str, Any, str]] = [
    ("text", "x" * 21, "too_long"),
    ("text", "invoice\u202efdp.exe", "invisible_char"),  # reads "invoiceexe.pdf" on a page
    ("textarea", "line\x00two", "invisible_char"),
    ("coded", "AB12", "pattern"),
    ("textarea", {"not": "text"}, "not_text"),
    ("rich_text", 5, "not_text"),
    ("hidden", ["x"], "not_text"),
    ("phone", "12345", "not_phone"),
    ("phone", "1381234567٨", "not_phone"),  # a digit of another script is not stored as a phone's
    ("email", "chen@", "not_email"),
    ("url", "javascript:alert(1)", "not_url"),
    ("id_number", "110105194912310021", "not_resident_id"),
    ("credit_code", "91350100M000100Y44", "not_uscc"),
    ("waybill", "SF-123", "not_waybill"),
    ("contract", "HT-20260", "pattern"),
    ("number", "abc", "not_number"),
    ("number", 10 ** 400, "not_number"),  # a JSON integer too large for a float
    ("percent", 10 ** 400, "not_number"),
    ("money", 10 ** 400, "not_number"),
    ("integer", "4.5", "not_integer"),
    ("money", "1.234", "decimals"),
    ("percent", "101", "too_large"),
    ("rating", 6, "not_rating"),
    ("select", "medium", "not_choice"),
    ("radio", "fax", "not_choice"),
    ("multiselect", ["late", "stolen"], "not_choices"),
    ("checkboxes", ["noon"], "not_choices"),
    ("cascade", "east", "not_choice"),
    ("region", "mars", "not_choice"),
    ("boolean", "maybe", "not_boolean"),
    ("date", "2026-13-01", "not_date"),
    ("date", "2026/02/30", "not_date"),
    ("date", "11/20/2026", "not_date"),  # month or day first: ambiguous, refused
    ("datetime", "yesterday", "not_datetime"),
    ("time", "25:00", "not_time"),
    ("duration", "2 workdays", "business_duration"),
    ("owner", "bad name!", "not_username"),
    ("role", "pilot", "not_choice"),
    ("department", "sales", "not_choice"),
    ("reference", "abc", "not_reference"),
    ("location", {"lat": 91, "lng": 0}, "bad_latitude"),
    ("location", {"lat": 10 ** 400, "lng": 0}, "bad_latitude"),
    ("signature", data_url(b"GIF89a" + b"\0" * 20, "image/png"), "not_signature"),
    ("subtable", [{"number": "x"}], "rows_invalid"),
    ("auto_number", "CP000001", "system_set"),
    ("computed", "99", "system_set"),
]


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> System:
    return boot_gallery(tmp_path_factory.mktemp("types"))


@pytest.fixture(scope="module")
def form(system: System) -> CompiledForm:
    return system.forms.form("gallery")


def parse(form: CompiledForm, field: str, raw: Any) -> Any:
    return form.types[field].parse(raw, form.field(field))


def refusal(form: CompiledForm, field: str, raw: Any) -> FieldInvalid:
    with pytest.raises(FieldInvalid) as caught:
        parse(form, field, raw)
    return caught.value


# -- every type ---------------------------------------------------------------------------------

def test_there_are_at_least_thirty_built_in_field_types() -> None:
    assert len(build_registry(plugins=False).field_types) >= 30


def test_the_gallery_has_a_field_of_every_built_in_type(form: CompiledForm) -> None:
    used = {spec.type for spec in form.spec.fields.values()}
    stored_here = {t.name for t in build_registry(plugins=False).field_types
                   if not getattr(t, "holds_attachments", False)}  # uploads have tests of their own
    assert used == stored_here


@pytest.mark.parametrize("field, raw, expected", VALID, ids=[v[0] for v in VALID])
def test_a_valid_value_parses_to_the_stored_value(form: CompiledForm, field: str, raw: Any, expected: Any) -> None:
    assert parse(form, field, raw) == expected


@pytest.mark.parametrize("field, raw, key", INVALID, ids=[v[0] for v in INVALID])
def test_an_invalid_value_is_refused_with_its_message_key(form: CompiledForm, field: str, raw: Any, key: str) -> None:
    assert refusal(form, field, raw).key == key


@pytest.mark.parametrize("key", sorted(MESSAGES))
def test_every_message_exists_in_english_and_chinese(key: str) -> None:
    assert {"en", "zh-CN"} <= set(MESSAGES[key])


@pytest.mark.parametrize("name", build_registry(plugins=False).field_types.names())
def test_every_type_declares_a_description_and_an_example(name: str) -> None:
    field_type = build_registry(plugins=False).field_types.get(name)
    assert field_type.description and field_type.examples


def test_display_only_types_have_no_column(form: CompiledForm) -> None:
    shown = {"section", "help_text", "divider"}
    assert not shown & set(form.stored)
    assert all(form.types[n].column_type(form.field(n)) is None for n in shown)


# -- text ---------------------------------------------------------------------------------------

def test_a_direction_override_is_refused_by_the_generated_validator_too_naming_it(form: CompiledForm) -> None:
    # The generated validator's shortcut took any short string as it was.
    with pytest.raises(ValidationFailed) as refused:
        form.validate({"text": "abc\u202edef"})
    assert refused.value.errors["text"] == [
        "Remove the invisible control character (U+202E) from this text: it was pasted in with it, "
        "and could make the text read differently from what is stored."]


def test_a_pattern_message_replaces_the_built_in_text(form: CompiledForm) -> None:
    assert refusal(form, "coded", "ab").text("zh-CN") == "如 AB123"


def test_a_pattern_never_sees_more_than_a_thousand_characters(form: CompiledForm) -> None:
    problem = refusal(form, "contract", "H" * 5000)
    assert problem.key == "too_long"


def test_a_hidden_field_asks_renderers_for_a_hidden_input(form: CompiledForm) -> None:
    assert form.types["hidden"].widget == "hidden"


# -- rich text ----------------------------------------------------------------------------------

def test_rich_text_keeps_the_allowed_formatting(form: CompiledForm) -> None:
    html = "<p><strong>a</strong><em>b</em><u>c</u></p><ul><li>d</li></ul><ol><li>e</li></ol><blockquote>f<br>g</blockquote>"
    assert parse(form, "rich_text", html) == html


def test_rich_text_drops_event_handlers_and_script_links(form: CompiledForm) -> None:
    value = parse(form, "rich_text", '<p onclick="x()">a <a href="javascript:x()">b</a> <img src=x onerror=y></p>')
    assert "onclick" not in value and "javascript" not in value and "<img" not in value


def test_rich_text_keeps_http_and_mailto_links_with_a_safe_rel(form: CompiledForm) -> None:
    value = parse(form, "rich_text", '<a href="https://example.com">x</a><a href="mailto:a@b.cn">y</a>')
    assert 'href="https://example.com"' in value and 'href="mailto:a@b.cn"' in value
    assert 'rel="noopener noreferrer nofollow"' in value


def test_rich_text_drops_relative_links(form: CompiledForm) -> None:
    assert "href" not in parse(form, "rich_text", '<a href="/admin">x</a>')


def test_rich_text_that_is_only_markup_counts_as_empty(form: CompiledForm) -> None:
    assert parse(form, "rich_text", "<script>x()</script><p></p>") == ""


def test_rich_text_longer_than_its_cap_is_refused(form: CompiledForm) -> None:
    assert refusal(form, "rich_text", "<p>" + "a" * 600 + "</p>").key == "too_long"


def test_rich_text_displays_as_plain_lines(form: CompiledForm) -> None:
    value = parse(form, "rich_text", "<p>one &amp; two</p><p>three</p>")
    assert form.display("rich_text", value, "en") == "one & two\nthree"


# -- url ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw", ["ftp://example.com/x", "https://user:pw@example.com/", "https://exa mple.com",
                                 "https://", "example.com", "https://-bad-.com/", "http://example.com:99999/"])
def test_a_url_that_is_not_a_plain_web_address_is_refused(form: CompiledForm, raw: str) -> None:
    assert refusal(form, "url", raw).key == "not_url"


def test_a_url_over_its_length_cap_is_refused(form: CompiledForm) -> None:
    assert refusal(form, "url", "https://example.com/" + "a" * 100).key == "too_long"


def test_a_url_may_use_an_international_domain_or_an_ip(form: CompiledForm) -> None:
    assert parse(form, "url", "https://邮政.中国/查询") == "https://邮政.中国/查询"
    assert parse(form, "url", "http://[2001:db8::1]:8080/") == "http://[2001:db8::1]:8080/"


# -- id numbers ---------------------------------------------------------------------------------

def test_a_resident_id_with_an_impossible_birth_date_is_refused(form: CompiledForm) -> None:
    assert refusal(form, "id_number", "110105194902301234").key == "not_resident_id"


def test_a_masked_id_number_shows_only_its_ends(form: CompiledForm) -> None:
    assert form.display("id_number", "11010519491231002X", "en") == "110105********002X"


def test_a_credit_code_with_a_letter_outside_its_alphabet_is_refused(form: CompiledForm) -> None:
    assert refusal(form, "credit_code", "91350100M000100I43").key == "not_uscc"


def test_a_waybill_number_may_be_written_with_spaces(form: CompiledForm) -> None:
    assert parse(form, "waybill", "SF 1234 5678 90") == "SF1234567890"


# -- numbers ------------------------------------------------------------------------------------

def test_a_percent_below_zero_is_refused_by_default(form: CompiledForm) -> None:
    assert refusal(form, "percent", "-1").key == "too_small"


def test_a_percent_with_too_many_decimals_is_refused(form: CompiledForm) -> None:
    assert refusal(form, "percent", "12.345").key == "decimals"


def test_a_percent_displays_with_its_sign(form: CompiledForm) -> None:
    assert form.display("percent", Decimal("12.50"), "zh-CN") == "12.5%"


def test_a_rating_of_zero_is_refused(form: CompiledForm) -> None:
    assert refusal(form, "rating", 0).key == "not_rating"


def test_a_rating_message_names_the_highest_rating(form: CompiledForm) -> None:
    assert "5" in refusal(form, "rating", "9").text("en")


def test_a_rating_displays_as_stars(form: CompiledForm) -> None:
    assert form.display("rating", 4, "en") == "★★★★☆ 4/5"


def test_an_integer_in_unicode_digits_is_refused(form: CompiledForm) -> None:
    assert refusal(form, "integer", "²").key == "not_integer"


# -- choices ------------------------------------------------------------------------------------

def test_checkboxes_are_a_type_of_their_own(form: CompiledForm) -> None:
    registry = build_registry(plugins=False)
    assert registry.field_types.canonical("checkboxes") == "checkboxes"
    assert form.types["checkboxes"] is not form.types["multiselect"]


def test_checkboxes_display_their_labels_in_the_users_language(form: CompiledForm) -> None:
    assert form.display("checkboxes", ["morning", "evening"], "zh-CN") == "上午, 晚上"


def test_a_region_may_be_a_middle_level_of_the_tree(form: CompiledForm) -> None:
    assert parse(form, "region", "shanghai") == "shanghai"


def test_a_region_displays_its_path(form: CompiledForm) -> None:
    assert form.display("region", "pudong", "zh-CN") == "华东 / 上海 / 浦东"


# -- time ---------------------------------------------------------------------------------------

def test_a_time_before_its_minimum_is_refused(form: CompiledForm) -> None:
    assert refusal(form, "time", "07:59").key == "too_small"


def test_a_time_with_seconds_keeps_them(form: CompiledForm) -> None:
    value = parse(form, "time", "10:15:30")
    assert form.types["time"].to_json(value, form.field("time")) == "10:15:30"


@pytest.mark.parametrize("raw, seconds", [("30m", 1800), ("2h", 7200), ("1.5 hours", 5400),
                                          ("1h30m", 5400), ("1:30", 5400), ("2小时30分钟", 9000), (90, 90)])
def test_a_duration_is_read_in_wall_clock_units(form: CompiledForm, raw: Any, seconds: int) -> None:
    assert parse(form, "duration", raw) == seconds


def test_a_duration_over_its_maximum_is_refused(form: CompiledForm) -> None:
    assert refusal(form, "duration", "31 days").key == "too_large"


def test_a_duration_of_nonsense_is_refused(form: CompiledForm) -> None:
    assert refusal(form, "duration", "2h and a bit").key == "not_duration"


@pytest.mark.parametrize("locale, shown", [("en", "1 d 2 h 5 min"), ("zh-CN", "1天2小时5分钟")])
def test_a_duration_displays_in_the_users_language(form: CompiledForm, locale: str, shown: str) -> None:
    assert form.display("duration", 86400 + 7200 + 300, locale) == shown


@pytest.mark.parametrize("source, holds", [
    ("duration > 2d", True), ("duration == 3d", True), ("duration < 72h", False), ("2h <= duration", True),
    ("duration > 7200", True), ("duration + 60 == 259260", True),
])
def test_a_duration_compares_with_durations_and_with_seconds(form: CompiledForm, system: System,
                                                             source: str, holds: bool) -> None:
    from engine.expr import Scope, compile_expression
    from engine.expr.context import EvalContext

    expression = compile_expression(source, scope=Scope(frozenset({"duration"})),
                                    functions=system.bundle.registry.functions)
    ctx = EvalContext(now=datetime(2026, 3, 2, tzinfo=timezone.utc))
    typed = parse(form, "duration", "3d")
    read_back = form.types["duration"].from_db(259200, form.field("duration"))
    assert expression.evaluate({"duration": typed}, ctx) is holds
    assert expression.evaluate({"duration": read_back}, ctx) is holds


def test_a_duration_is_still_a_whole_number_of_seconds(form: CompiledForm) -> None:
    import json

    value = parse(form, "duration", "1h")
    assert value == 3600 and isinstance(value, int) and json.dumps(value) == "3600" and {3600: "x"}[value] == "x"


# -- people -------------------------------------------------------------------------------------

def test_role_choices_come_from_bundle_yaml_with_their_labels(form: CompiledForm) -> None:
    assert form.display("role", "supervisor", "zh-CN") == "主管"


def test_departments_form_a_tree_by_parent(form: CompiledForm) -> None:
    assert form.display("department", "hotline", "en") == "Service centre / Hotline team"


# -- location, signature, reference -------------------------------------------------------------

def test_a_location_may_be_only_an_address(form: CompiledForm) -> None:
    assert parse(form, "location", "北京市东城区") == {"address": "北京市东城区", "lat": None, "lng": None}


def test_a_location_with_only_one_coordinate_is_refused(form: CompiledForm) -> None:
    assert refusal(form, "location", {"lat": 31.2}).key == "not_location"


def test_a_location_with_a_longitude_out_of_range_is_refused(form: CompiledForm) -> None:
    assert refusal(form, "location", {"lat": 31.2, "lng": 181}).key == "bad_longitude"


def test_a_location_displays_its_address_and_coordinates(form: CompiledForm) -> None:
    value = {"address": "上海", "lat": 31.2304, "lng": 121.4737}
    assert form.display("location", value, "en") == "上海 (31.230400, 121.473700)"


def test_a_signature_over_its_size_cap_is_refused(form: CompiledForm) -> None:
    assert refusal(form, "signature", data_url(tiny_png() + b"\0" * 2000)).key == "signature_too_large"


def test_a_signature_that_is_not_base64_is_refused(form: CompiledForm) -> None:
    assert refusal(form, "signature", "data:image/png;base64,@@@@").key == "not_signature"


def test_a_signature_of_another_image_type_is_refused(form: CompiledForm) -> None:
    assert refusal(form, "signature", data_url(tiny_png(), "image/svg+xml")).key == "not_signature"


def test_a_signature_displays_as_signed(form: CompiledForm) -> None:
    assert form.display("signature", PNG, "zh-CN") == "已签名"


def test_a_reference_of_zero_is_refused(form: CompiledForm) -> None:
    assert refusal(form, "reference", 0).key == "not_reference"


# -- system values ------------------------------------------------------------------------------

def test_system_set_types_tell_renderers_they_are_read_only(form: CompiledForm) -> None:
    assert form.types["auto_number"].read_only and form.types["computed"].read_only


def test_a_computed_value_is_coerced_to_its_result_kind(form: CompiledForm) -> None:
    assert form.types["computed"].coerce(2.5, form.field("computed")) == Decimal("2.50")


def test_a_computed_value_that_cannot_be_coerced_is_empty(form: CompiledForm) -> None:
    assert form.types["computed"].coerce("not money", form.field("computed")) is None


def test_a_computed_number_from_a_money_amount_is_a_float(form: CompiledForm) -> None:
    """`computed: amount * 2` gave a Decimal, which the record's history could not store."""
    value = form.types["number"].coerce(Decimal("20.50"), form.field("number"))
    assert value == 20.5 and type(value) is float


def test_a_computed_integer_with_decimals_is_rounded_to_a_whole_number(form: CompiledForm) -> None:
    assert form.types["integer"].coerce(Decimal("2.6"), form.field("integer")) == 3


def test_a_computed_money_value_displays_with_its_currency(form: CompiledForm) -> None:
    assert form.display("computed", Decimal("2469.00"), "en") == "¥2,469.00"


@pytest.mark.parametrize("result, value, expected", [
    ("number", Decimal("2.5"), 2.5), ("text", 12, "12"), ("boolean", 0, False),
    ("date", datetime(2026, 11, 22, 20, 0, tzinfo=timezone.utc), date(2026, 11, 23)),
    ("money", True, None), ("number", float("inf"), None)])
def test_a_computed_value_is_converted_to_its_declared_result(result: str, value: Any, expected: Any) -> None:
    from engine.types import Span
    from forms.spec import FieldSpec

    spec = FieldSpec("c", "computed", "c", Span("f.yaml", 1, 1), {"result": result}, timezone="Asia/Shanghai")
    assert build_registry(plugins=False).field_types.get("computed").coerce(value, spec) == expected


@pytest.mark.parametrize("raw", ["2026-11-20", "2026-02-30", "2026-W47-5", " 2026-11-2", "2026-11-20T08:00", "20261120",
                                 "2026-11-20 ", date(2026, 11, 20), datetime(2026, 11, 20, 23, 0), 20261120, ""])
def test_the_date_parser_built_at_load_reads_exactly_what_parse_reads(form: CompiledForm, raw: Any) -> None:
    spec = form.field("date")
    ftype = form.types["date"]

    def outcome(fn: Any) -> Any:
        try:
            return fn(raw)
        except FieldInvalid as exc:
            return exc.key

    assert outcome(ftype.parser(spec)) == outcome(lambda r: ftype.parse(r, spec))


def test_a_computed_value_of_another_kind_is_left_empty_with_a_warning_naming_the_field(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # The field stayed empty without a word: the analyst could not tell why.
    from tests.forms import GALLERY, boot_gallery

    computed = 'computed: {type: computed, expression: "coalesce(money, 0) * 2", result: money}'
    files = {"forms/gallery.yaml": GALLERY["forms/gallery.yaml"].replace(
        computed, 'computed: {type: computed, expression: "coalesce(text, \'\') + \' yuan\'", result: money}')}
    form = boot_gallery(tmp_path, files).forms.form("gallery")
    with caplog.at_level(logging.WARNING, logger="forms.compile"):
        assert form.validate({"text": "five"})["computed"] is None
    (warning,) = [r.getMessage() for r in caplog.records if "left empty" in r.getMessage()]
    assert warning.startswith("computed field 'computed' of form 'gallery' left empty: its expression gave "
                              "'five yuan' (text), which cannot be stored as its result, money (")
    assert re.search(r"forms/gallery\.yaml:\d+:\d+\)$", warning)  # where the expression is written
