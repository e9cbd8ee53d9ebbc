"""Datasets and dashboards are checked at load: every mistake comes back as file:line:col."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.bundle import validate_bundle
from tests.engine.bundle_kit import problems, write_bundle
from tests.reports.report_kit import FILES
from web.system import build_registry

DATASET = FILES["reports/tickets.yaml"]
BOARD = FILES["dashboards/board.yaml"]


def errors(tmp_path: Path, **changed: str) -> list[tuple[str, int, int, str]]:
    files = dict(FILES)
    for rel, text in changed.items():
        files[rel.replace("__", "/").replace("_yaml", ".yaml")] = text
    return problems(tmp_path, files)


def test_the_kit_loads_cleanly(tmp_path: Path) -> None:
    assert errors(tmp_path) == []


def test_an_unknown_measure_in_a_widget_is_named_with_a_hint(tmp_path: Path) -> None:
    board = BOARD.replace("measures: [tickets], compare", "measures: [ticket], compare")
    found = errors(tmp_path, dashboards__board_yaml=board)
    assert [(f, line, m) for f, line, _, m in found] == [("dashboards/board.yaml", 10, "unknown measure 'ticket'")]


def test_a_form_field_the_dataset_does_not_list_is_told_to_add_it_there(tmp_path: Path) -> None:
    # "unknown field 'satisfaction'" with the dataset's fields sent the analyst looking for a typo.
    board = BOARD.replace("by_region: {chart: bar, dataset: tickets, dimensions: [region]",
                          "by_region: {chart: bar, dataset: tickets, dimensions: [satisfaction]")
    root = write_bundle(tmp_path, {**FILES, "dashboards/board.yaml": board})
    (found,) = [d for d in validate_bundle(root, build_registry(plugins=False))[1] if d.severity == "error"]
    assert found.message == "dataset 'tickets' has no field 'satisfaction' (a field of the form 'ticket' it does not list)"
    assert found.hint is not None and found.hint.startswith(
        "add satisfaction: {field: satisfaction} under the fields: of dataset 'tickets' in ")


def test_a_filter_on_a_form_field_the_datasets_do_not_list_is_told_where_to_add_it(tmp_path: Path) -> None:
    board = BOARD.replace("  customer: {field: customer}", "  satisfaction: {field: satisfaction}")
    root = write_bundle(tmp_path, {**FILES, "dashboards/board.yaml": board})
    (found,) = [d for d in validate_bundle(root, build_registry(plugins=False))[1] if d.severity == "error"]
    assert found.message == "no dataset of this dashboard has a field 'satisfaction'"
    assert found.hint is not None and found.hint.startswith(
        "add satisfaction: {field: satisfaction} under the fields: of dataset 'tickets' in ")


def test_a_rollup_on_a_field_the_dataset_does_not_list_is_told_to_list_it_first(tmp_path: Path) -> None:
    # "'satisfaction' is not a field of the form in this dataset": it is a field of the form.
    dataset = DATASET.replace("by_region: {date: created, dimensions: [region]}",
                              "by_region: {date: created, dimensions: [amount]}")
    root = write_bundle(tmp_path, {**FILES, "reports/tickets.yaml": dataset})
    (found,) = [d for d in validate_bundle(root, build_registry(plugins=False))[1] if d.severity == "error"]
    assert found.message == "'amount' is not a field of this dataset"
    assert found.hint == ("a rollup groups by the dataset's fields: if 'amount' is a field of the form, "
                          "add amount: {field: amount} under fields: first")


@pytest.mark.parametrize("field, hint", [
    ("amount", "add one under the dataset's measures:, e.g. total_amount: {sum: amount}"),
    ("region", "to count the records by 'region', put it under dimensions: and show a count measure ({count: true})"),
])
def test_a_form_field_given_as_a_measure_is_told_what_a_measure_is(tmp_path: Path, field: str, hint: str) -> None:
    dataset = DATASET.replace("  amount: {sum: amount}\n", "")
    board = BOARD.replace("total: {chart: kpi, dataset: tickets, measures: [tickets]",
                          f"total: {{chart: kpi, dataset: tickets, measures: [{field}]")
    root = write_bundle(tmp_path, {**FILES, "reports/tickets.yaml": dataset, "dashboards/board.yaml": board})
    errors_found = [d for d in validate_bundle(root, build_registry(plugins=False))[1] if d.severity == "error"]
    (found,) = [d for d in errors_found if d.yaml_path[:2] == ("widgets", "total")]
    assert found.message.startswith(f"dataset 'tickets' has no measure '{field}' ('{field}' is a field")
    assert found.hint == hint


def test_a_misspelt_dataset_field_is_reported_once_not_at_every_use(tmp_path: Path) -> None:
    dataset = DATASET.replace("  region: {field: region}", "  region: {field: regoin}")
    found = errors(tmp_path, reports__tickets_yaml=dataset)
    assert [(f, line, m) for f, line, _, m in found] == [("reports/tickets.yaml", 8, "unknown field 'regoin'")]


def test_a_measure_with_a_bad_expression_is_reported_once_not_as_unknown_in_widgets(tmp_path: Path) -> None:
    dataset = DATASET.replace("closed_72h: {rate: resolution_hours <= 72h", "closed_72h: {rate: resolution_hour <= 72h")
    found = errors(tmp_path, reports__tickets_yaml=dataset)
    assert [(f, line, m) for f, line, _, m in found] == [
        ("reports/tickets.yaml", 25, "unknown name 'resolution_hour'")]


def test_a_condition_on_a_group_of_the_category_tree_is_told_the_values_under_it(tmp_path: Path) -> None:
    dataset = DATASET.replace("measures:\n", 'measures:\n  delivery: {count: true, where: category == "delivery"}\n', 1)
    root = write_bundle(tmp_path, {**FILES, "reports/tickets.yaml": dataset})
    (found,) = [d for d in validate_bundle(root, build_registry(plugins=False))[1] if d.severity == "error"]
    assert found.message.startswith("'delivery' is a group of 'category'")
    assert found.hint == 'write category in ("late", "lost")'


def test_a_date_dimension_needs_a_grain(tmp_path: Path) -> None:
    board = BOARD.replace("dimensions: [created.month]", "dimensions: [created]")
    assert any("a date dimension needs a grain" in m for *_, m in errors(tmp_path, dashboards__board_yaml=board))


def test_a_misspelt_date_grain_is_named_with_a_hint(tmp_path: Path) -> None:
    """'created.mnth' used to be told it "needs a grain", though it had one, misspelt."""
    board = BOARD.replace("dimensions: [created.month]", "dimensions: [created.mnth]")
    found = errors(tmp_path, dashboards__board_yaml=board)
    assert [m for *_, m in found] == ["unknown grain 'mnth' of the date 'created'"]



def test_a_grain_written_in_a_dataset_field_is_told_where_it_goes(tmp_path: Path) -> None:
    # "did you mean 'created_at'?" sent the analyst back to the field without the month.
    dataset = DATASET.replace("  region: {field: region}", "  region: {field: region}\n  month: {field: created_at.month}")
    root = write_bundle(tmp_path, {**FILES, "reports/tickets.yaml": dataset})
    (found,) = [d for d in validate_bundle(root, build_registry(plugins=False))[1] if d.severity == "error"]
    assert found.message.startswith("unknown field 'created_at.month': a date's grain is chosen in a widget's dimensions")
    assert found.hint == "write `month: {field: created_at}` here and `month.month` in the widget"


def test_a_sum_of_a_text_field_is_refused_at_load(tmp_path: Path) -> None:
    """SQLite adds text up as 0 and PostgreSQL refuses it: either way only the dashboard found out."""
    dataset = DATASET.replace("amount: {sum: amount}", "amount: {sum: customer}")
    found = errors(tmp_path, reports__tickets_yaml=dataset)
    assert [(f, m) for f, _, _, m in found] == [
        ("reports/tickets.yaml", "sum works on numbers, and 'customer' holds text")]


def test_a_chart_gets_the_dimensions_it_draws(tmp_path: Path) -> None:
    board = BOARD.replace("chart: pie, dataset: tickets, dimensions: [group]", "chart: pie, dataset: tickets, dimensions: [group, region]")
    assert any("a pie chart takes 1 dimension(s), not 2" in m for *_, m in errors(tmp_path, dashboards__board_yaml=board))



def test_a_chart_that_cannot_draw_the_widget_names_the_charts_that_can(tmp_path: Path) -> None:
    board = BOARD.replace("chart: pie, dataset: tickets, dimensions: [group]", "chart: pie, dataset: tickets, dimensions: [group, region]")
    root = write_bundle(tmp_path, {**FILES, "dashboards/board.yaml": board})
    _bundle, diags = validate_bundle(root, build_registry(plugins=False))
    (found,) = [d for d in diags if d.severity == "error"]
    assert found.hint is not None and found.hint.startswith("charts for 2 dimension(s) and 1 measure(s): area, bar,")



SCHEDULED = """schedules:
  weekly: {every: weekly, channel: log, to: [boss@example.com], period: PERIOD}
"""


def test_a_schedules_misspelt_period_is_a_load_error_with_the_fix(tmp_path: Path) -> None:
    found = errors(tmp_path, dashboards__board_yaml=BOARD + SCHEDULED.replace("PERIOD", "lastweek"))
    assert [(f, line, m) for f, line, _, m in found] == [("dashboards/board.yaml", 26, "unknown period 'lastweek'")]


def test_a_schedules_period_needs_a_date_filter_to_narrow(tmp_path: Path) -> None:
    board = BOARD.replace("  period: {field: created}\n", "")
    found = errors(tmp_path, dashboards__board_yaml=board + SCHEDULED.replace("PERIOD", "last_week"))
    assert [m for *_, m in found] == ["the dashboard has no date filter for the period to narrow"]


def test_a_schedules_period_is_not_blamed_when_its_form_did_not_load(tmp_path: Path) -> None:
    # A tab in the form took its dataset down, and the date filter with it: the dashboard was
    # told it had no date filter, an error in a file the analyst had not touched, listed first.
    form = FILES["forms/ticket.yaml"].replace("  amount: {type: money}", "\tamount: {type: money}")
    found = errors(tmp_path, forms__ticket_yaml=form,
                   dashboards__board_yaml=BOARD + SCHEDULED.replace("PERIOD", "last_week"))
    assert [f for f, *_ in found] == ["forms/ticket.yaml"]


def test_a_level_is_not_blamed_when_its_option_list_did_not_load(tmp_path: Path) -> None:
    # A slip in lists/category.yaml made every `level:` of the reports "apply to a field with a
    # tree of options": three errors in files the analyst had not touched.
    tree = FILES["lists/category.yaml"].replace("      - {value: lost,", "     - {value: lost,")
    found = errors(tmp_path, lists__category_yaml=tree)
    assert found and {f for f, *_ in found} == {"lists/category.yaml"}


def test_a_schedules_channel_is_not_blamed_when_bundle_yaml_did_not_load(tmp_path: Path) -> None:
    # bundle.yaml, which names the channels, had a slip: the postal operations board was told its
    # channel 'ops_wecom' was unknown.
    board = BOARD + SCHEDULED.replace("PERIOD", "last_week").replace("channel: log", "channel: ops_wecom")
    found = errors(tmp_path, bundle_yaml=FILES["bundle.yaml"] + "x: [unclosed\n", dashboards__board_yaml=board)
    assert found and {f for f, *_ in found} == {"bundle.yaml"}


def test_a_default_on_a_choice_filter_is_a_load_error(tmp_path: Path) -> None:
    # Only a period filter starts preset: `default: east` loaded and was never applied.
    board = BOARD.replace("  region: {field: region}", "  region: {field: region, default: east}")
    found = errors(tmp_path, dashboards__board_yaml=board)
    assert [(f, line, m) for f, line, _, m in found] == [
        ("dashboards/board.yaml", 5, "a default applies to a date filter only: the choice filter 'region' "
                                     "starts empty (every record)")]


def test_an_unknown_chart_type_is_refused(tmp_path: Path) -> None:
    board = BOARD.replace("chart: heatmap", "chart: heatmapp")
    assert any("unknown chart type 'heatmapp'" in m for *_, m in errors(tmp_path, dashboards__board_yaml=board))


def test_working_time_cannot_be_compared_in_the_database(tmp_path: Path) -> None:
    dataset = DATASET.replace("rate: resolution_hours <= 72h", "rate: resolution_hours <= 2 workdays")
    assert any("working-time durations" in m for *_, m in errors(tmp_path, reports__tickets_yaml=dataset))


def test_a_condition_outside_sql_is_refused_at_load(tmp_path: Path) -> None:
    dataset = DATASET.replace("where: amount >= 300", "where: 'x' in customer.lower()")
    found = errors(tmp_path, reports__tickets_yaml=dataset)
    assert found and found[0][0] == "reports/tickets.yaml"


@pytest.mark.parametrize("bad, message", [
    ("dimensions: [customer_name]", "is not a field of this dataset"),
    ("dimensions: [department]", "is not a field of the form in this dataset"),
])
def test_a_rollup_groups_by_form_fields_only(tmp_path: Path, bad: str, message: str) -> None:
    dataset = DATASET.replace("dimensions: [region]}", bad + "}", 1)
    assert any(message in m for *_, m in errors(tmp_path, reports__tickets_yaml=dataset))


def test_a_rollup_grain_is_day_or_month_with_its_position(tmp_path: Path) -> None:
    dataset = DATASET.replace("grain: month, dimensions: [customer]", "grain: week, dimensions: [customer]")
    found = errors(tmp_path, reports__tickets_yaml=dataset)
    line = DATASET.splitlines().index("  customer_month: {date: created, grain: month, dimensions: [customer]}") + 1
    assert [(f, ln) for f, ln, _, m in found if "week" in m] == [("reports/tickets.yaml", line)]


def test_a_month_rollup_needs_its_date(tmp_path: Path) -> None:
    dataset = DATASET.replace("{date: created, grain: month, dimensions: [customer]}", "{grain: month, dimensions: [customer]}")
    assert any("a month rollup needs its `date`" in m for *_, m in errors(tmp_path, reports__tickets_yaml=dataset))


def test_a_filter_must_name_a_field_of_a_widget_dataset(tmp_path: Path) -> None:
    board = BOARD.replace("customer: {field: customer}", "customer: {field: client}")
    assert any("no dataset of this dashboard has a field 'client'" in m for *_, m in errors(tmp_path, dashboards__board_yaml=board))


def test_a_misspelt_filter_field_gets_a_hint(tmp_path: Path) -> None:
    board = BOARD.replace("customer: {field: customer}", "customer: {field: custmer}")
    write_bundle(tmp_path, {**FILES, "dashboards/board.yaml": board})
    _bundle, diags = validate_bundle(tmp_path, build_registry(plugins=False))
    (diag,) = [d for d in diags if d.severity == "error"]
    assert diag.hint == "did you mean 'customer'?"


def test_a_schedule_names_a_configured_channel(tmp_path: Path) -> None:
    board = BOARD + "schedules:\n  daily: {every: daily, channel: fax, to: a@b.c}\n"
    assert any("unknown channel 'fax'" in m for *_, m in errors(tmp_path, dashboards__board_yaml=board))


def test_a_measure_condition_is_checked_against_the_options_of_its_field(tmp_path: Path) -> None:
    dataset = DATASET.replace("region == 'east'", "region == 'eats'")
    assert errors(tmp_path, reports__tickets_yaml=dataset) == [
        ("reports/tickets.yaml", 26, 57, "'eats' is not an option of 'region': the comparison could never hold")]


def test_a_dataset_field_of_a_form_field_carries_its_options_into_conditions(tmp_path: Path) -> None:
    dataset = DATASET.replace("big: {count: true, where: amount >= 300}",
                              "big: {count: true, where: group == 'delivry'}")
    found = errors(tmp_path, reports__tickets_yaml=dataset)
    assert [(f, line, m) for f, line, _, m in found] == [
        ("reports/tickets.yaml", 29, "'delivry' is not an option of 'group': the comparison could never hold")]


def test_a_dataset_condition_comparing_a_number_field_with_text_is_an_error(tmp_path: Path) -> None:
    dataset = DATASET.replace("where: amount >= 300", "where: amount >= '300'")
    found = errors(tmp_path, reports__tickets_yaml=dataset)
    assert [(f, line, m) for f, line, _, m in found] == [
        ("reports/tickets.yaml", 29, "the text '300' cannot be compared with 'amount', which holds a number: "
                                     "the expression would fail when it runs")]


def test_a_tree_field_cut_to_a_level_is_compared_with_the_options_of_that_level(tmp_path: Path) -> None:
    dataset = DATASET.replace("big: {count: true, where: amount >= 300}",
                              "big: {count: true, where: group == 'late' or category == 'late'}")
    found = errors(tmp_path, reports__tickets_yaml=dataset)
    assert [(f, line, m) for f, line, _, m in found] == [
        ("reports/tickets.yaml", 29, "'late' is not an option of 'group': the comparison could never hold")]


def test_a_status_no_record_can_have_is_an_error_in_a_measure(tmp_path: Path) -> None:
    """`where: status == "aproved"` loaded and counted nothing, forever."""
    dataset = DATASET.replace("open: {count: true, where: closed_at == None}",
                              "open: {count: true, where: status == \"withdrawnn\"}")
    found = errors(tmp_path, reports__tickets_yaml=dataset)
    assert [m for *_, m in found] == ["'withdrawnn' is not an option of 'status': the comparison could never hold"]


def test_a_status_its_flow_writes_is_accepted_in_a_widget_condition(tmp_path: Path) -> None:
    board = BOARD.replace("measures: [tickets], compare", "measures: [tickets], where: status != \"withdrawn\", compare")
    assert errors(tmp_path, dashboards__board_yaml=board) == []
