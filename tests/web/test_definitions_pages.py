"""The definitions browser and the flow diagram it draws."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from engine.bundle import load_bundle
from tests.web.staff_kit import boot_helpdesk, client_for, write_bundle
from web.flow_diagram import fit, layout, render_svg
from web.system import System, build_registry

ROOT = Path(__file__).resolve().parents[2]
POSTAL = ROOT / "definitions" / "postal_complaints"


@pytest.fixture
def system(tmp_path: Path) -> System:
    return boot_helpdesk(tmp_path)


def boot_postal_definitions(tmp_path: Path) -> System:
    from web.system import boot

    return boot(POSTAL, db_url=f"sqlite:///{tmp_path / 'docket.db'}")


def test_the_overview_lists_forms_flows_lists_roles_and_departments(system: System) -> None:
    html = client_for(system, "carl").get("/definitions?lang=en").text
    for link in ('href="/definitions/forms/ticket"', 'href="/definitions/flows/ticket_flow"',
                 'href="/definitions/lists/area"'):
        assert link in html
    assert "<td><code>manager</code></td><td>Manager</td><td>every record</td>" in html
    assert "<td><code>north</code></td><td>North</td>" in html


def test_the_overviews_other_kinds_are_headed_in_the_readers_language_with_their_labels(tmp_path: Path) -> None:
    system = boot_postal_definitions(tmp_path)
    html = client_for(system, "admin").get("/definitions?lang=zh-CN").text
    headings = re.findall(r'<section class="def-kind" data-kind="([a-z_]+)">\s*<h2>([^<]+)</h2>', html)
    assert ("dashboard", "报表看板") in headings and ("template", "打印模板") in headings
    assert all(kind != text for kind, text in headings)
    assert '<a href="/dashboards/overview">' in html


def test_the_overview_links_only_the_dashboards_the_reader_may_open(tmp_path: Path) -> None:
    system = boot_postal_definitions(tmp_path)
    html = client_for(system, "agent").get("/definitions?lang=en").text
    assert '<a href="/dashboards/operations">' in html and '<a href="/dashboards/overview">' not in html
    assert "<code>overview</code>" in html


def test_the_overview_names_a_roles_boss_and_a_departments_parent_by_their_labels(tmp_path: Path) -> None:
    system = boot_postal_definitions(tmp_path)
    html = client_for(system, "admin").get("/definitions?lang=zh-CN").text
    assert "<td><code>agent</code></td><td>客服专员</td><td>本部门记录</td><td>主管</td>" in html
    assert "<td><code>exception_team</code></td><td>异常处理小组</td><td>运营部</td>" in html


def test_the_definitions_need_a_signed_in_user(system: System) -> None:
    assert client_for(system).get("/definitions").status_code == 303


def test_a_form_page_shows_each_field_with_its_type_flags_and_rules(system: System) -> None:
    html = client_for(system, "ann").get("/definitions/forms/ticket?lang=en").text
    assert re.search(r"<td><code>urgency</code></td><td>Urgency</td><td><code>select</code></td>", html)
    assert "staff only" in html and "<code>HD{seq:4}</code>" in html


def test_a_flow_page_draws_the_flow_and_lists_its_steps(system: System) -> None:
    html = client_for(system, "ann").get("/definitions/flows/ticket_flow?lang=zh-CN").text
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="flow-diagram"' in html
    assert ">分拣</text>" in html  # node labels in the page's language
    assert "→ 经理审批" in html


def test_a_flow_page_lists_what_each_step_edits_and_shows(tmp_path: Path) -> None:
    system = boot_postal_definitions(tmp_path)
    html = client_for(system, "agent").get("/definitions/flows/complaint_handling?lang=en").text
    row = html[html.index("<code>director_approval</code>"):]
    row = row[:row.index("</tr>")]
    assert ('<small class="muted">shows <code>compensation</code> <code>basis</code> '
            '<code>amount_claimed</code> <code>finance_assessment</code> </small>') in row


def test_a_flow_page_says_who_may_reopen_an_ended_record_and_where(tmp_path: Path) -> None:
    system = boot_postal_definitions(tmp_path)
    html = client_for(system, "agent").get("/definitions/flows/complaint_handling?lang=en").text
    assert ("An ended record may be reopened by: administrators, Supervisor, Department manager · "
            "Restart at step: Accept, Compensation proposal, Reply to the customer") in html


def test_the_flow_svg_downloads_as_an_image(system: System) -> None:
    response = client_for(system, "ann").get("/definitions/flows/ticket_flow.svg")
    assert response.headers["content-type"].startswith("image/svg+xml")
    ET.fromstring(response.text)  # well-formed XML


def test_unknown_definitions_are_not_found(system: System) -> None:
    client = client_for(system, "ann")
    assert client.get("/definitions/flows/nope").status_code == 404
    assert client.get("/definitions/forms/nope").status_code == 404
    assert client.get("/definitions/lists/nope").status_code == 404


def test_a_list_page_indents_children_under_their_parent(system: System) -> None:
    html = client_for(system, "ann").get("/definitions/lists/area?lang=en").text
    assert '<td class="depth-0">Hardware</td>' in html and '<td class="depth-1">Printer</td>' in html


# -- the diagram itself --------------------------------------------------------------------------
def flows_of(root: Path):  # type: ignore[no-untyped-def]
    bundle = load_bundle(root, build_registry(plugins=False))
    return bundle, bundle.all("flow")


def test_layers_follow_the_flow_and_a_return_edge_is_drawn_back(tmp_path: Path) -> None:
    bundle, flows = flows_of(write_bundle(tmp_path))
    lay = layout(flows["ticket_flow"], bundle.registry, "en")
    layer = {n: i for i, nodes in enumerate(lay.layers) for n in nodes}
    assert layer["begin"] < layer["triage"] < layer["route"] < layer["approve"] < layer["solve"]
    back = [(e.source, e.target) for e in lay.edges if e.back]
    assert back == [("approve", "triage")]


def test_edges_carry_branch_and_approval_labels(tmp_path: Path) -> None:
    bundle, flows = flows_of(write_bundle(tmp_path))
    labels = {(e.source, e.target): e.label for e in layout(flows["ticket_flow"], bundle.registry, "zh-CN").edges}
    assert labels[("route", "approve")] == "紧急"
    assert labels[("route", "solve")] == "否则"
    assert labels[("approve", "rejected")] == "驳回"


def test_no_two_nodes_overlap(tmp_path: Path) -> None:
    bundle, flows = flows_of(write_bundle(tmp_path))
    lay = layout(flows["ticket_flow"], bundle.registry, "en")
    points = list(lay.positions.values())
    assert len(set(points)) == len(points)


def test_analyst_text_in_labels_is_escaped(tmp_path: Path) -> None:
    root = write_bundle(tmp_path, {"flows/ticket_flow.yaml": """\
        flow: ticket_flow
        form: ticket
        label: "<script>alert(1)</script>"
        start: begin
        nodes:
          begin: {type: start, next: triage}
          triage: {type: task, label: "<img src=x onerror=alert(1)>", assign: {role: agent}, next: done}
          done: {type: end}
        """})
    bundle, flows = flows_of(root)
    svg = str(render_svg(flows["ticket_flow"], bundle.registry, "en"))
    assert "<script>" not in svg and "<img" not in svg
    assert "&lt;img src=x" in svg
    ET.fromstring(svg)


def test_long_labels_are_cut_with_an_ellipsis_counting_wide_characters_double() -> None:
    assert fit("短", 4) == "短"
    assert fit("一二三四五六", 6).endswith("…") and len(fit("一二三四五六", 6)) <= 4
    assert fit("short") == "short"


def test_the_postal_flow_draws_without_error() -> None:
    bundle, flows = flows_of(POSTAL)
    for flow in flows.values():
        ET.fromstring(str(render_svg(flow, bundle.registry, "zh-CN", current=[flow.start])))
