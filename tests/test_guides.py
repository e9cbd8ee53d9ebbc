"""The guides in docs/guides stay true: the analyst's edits, applied to a copy of the postal bundle
in the order written, give a valid bundle whose scenarios (old and new) all pass; every command
and setting of the server guide is one Docket accepts."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from engine.bundle import validate_bundle
from engine.errors import format_diagnostic
from web.scenarios import run_scenarios
from web.system import build_registry

ROOT = Path(__file__).resolve().parent.parent
GUIDES = ROOT / "docs" / "guides"
POSTAL = ROOT / "definitions" / "postal_complaints"
BLOCK = re.compile(r"```yaml\n(?P<body>.*?)```", re.S)
NEW = re.compile(r"# new file: (?P<path>\S+)\n")
APPEND = re.compile(r"# add at the end of: (?P<path>\S+)\n")
CHANGE = re.compile(r"# in (?P<path>\S+), change:\n(?P<old>.*?)# to:\n(?P<new>.*)", re.S)


def apply_guide(guide: Path, bundle: Path) -> list[str]:
    """Apply every edit of `guide` to `bundle`; the files it touched, in order."""
    touched = []
    for block in BLOCK.finditer(guide.read_text("utf-8")):
        body = block["body"]
        if change := CHANGE.match(body):
            target = bundle / change["path"]
            text = target.read_text("utf-8")
            assert text.count(change["old"]) == 1, f"{change['path']}: the text to change is not there once"
            target.write_text(text.replace(change["old"], change["new"]), encoding="utf-8")
        elif new := NEW.match(body):
            target = bundle / new["path"]
            assert not target.exists(), f"{new['path']} exists already"
            target.write_text(body[new.end():], encoding="utf-8")
        elif append := APPEND.match(body):
            target = bundle / append["path"]
            with target.open("a", encoding="utf-8") as out:
                out.write(body[append.end():])
        else:
            continue  # an example, not an edit
        touched.append(str(target.relative_to(bundle)))
    return touched


def guide_applied(tmp_path: Path, guide: str) -> tuple[Path, list[str]]:
    """A copy of the postal bundle with `guide`'s edits applied, and the files they touched."""
    bundle = tmp_path / "my_change"
    shutil.copytree(POSTAL, bundle)
    return bundle, apply_guide(GUIDES / guide, bundle)


@pytest.fixture
def site_survey(tmp_path: Path) -> tuple[Path, list[str]]:
    return guide_applied(tmp_path, "add-a-site-survey.md")


def test_the_site_survey_guide_edits_the_files_it_names(site_survey: tuple[Path, list[str]]) -> None:
    _bundle, touched = site_survey
    assert touched == ["lists/liability.yaml", "forms/complaint.yaml", "flows/complaint_handling.yaml",
                       "flows/complaint_handling.yaml", "scenarios/site_survey_customer_liable.yaml",
                       "scenarios/site_survey_carrier_liable.yaml"]


def test_the_site_survey_guide_gives_a_valid_bundle(site_survey: tuple[Path, list[str]]) -> None:
    bundle, _ = site_survey
    loaded, diags = validate_bundle(bundle, build_registry(plugins=False))
    assert diags == [], "\n".join(format_diagnostic(d) for d in diags)
    assert loaded is not None and "site_survey" in loaded.get("flow", "complaint_handling").nodes


def test_every_scenario_passes_after_the_site_survey_guide(site_survey: tuple[Path, list[str]], tmp_path: Path) -> None:
    bundle, _ = site_survey
    results = run_scenarios(bundle, db_folder=tmp_path, registry=build_registry(plugins=False))
    failed = [format_diagnostic(p) for r in results for p in r.problems]
    assert failed == [] and len(results) == len(list((POSTAL / "scenarios").glob("*.yaml"))) + 2


# -- connect-another-system.md -------------------------------------------------------------------
@pytest.fixture
def crm(tmp_path: Path) -> tuple[Path, list[str]]:
    return guide_applied(tmp_path, "connect-another-system.md")


def test_the_crm_guide_edits_the_files_it_names(crm: tuple[Path, list[str]]) -> None:
    _bundle, touched = crm
    assert touched == ["bundle.yaml", "forms/complaint.yaml", "rules/complaint_rules.yaml",
                       "scenarios/crm_answers_with_open_orders.yaml"]


def test_the_crm_guide_gives_a_valid_bundle_whose_scenarios_all_pass(crm: tuple[Path, list[str]],
                                                                      tmp_path: Path) -> None:
    bundle, _ = crm
    loaded, diags = validate_bundle(bundle, build_registry(plugins=False))
    assert diags == [], "\n".join(format_diagnostic(d) for d in diags)
    assert loaded is not None and "crm" in loaded.meta.channels
    results = run_scenarios(bundle, db_folder=tmp_path / "dbs", registry=build_registry(plugins=False))
    failed = [format_diagnostic(p) for r in results for p in r.problems]
    assert failed == [] and len(results) == len(list((POSTAL / "scenarios").glob("*.yaml"))) + 1


# -- run-on-a-server.md --------------------------------------------------------------------------
SERVER_GUIDE = GUIDES / "run-on-a-server.md"
DOCKET_COMMAND = re.compile(r"(?:^|[\s=])(?:\S*/)?docket(?:-admin)? (?P<args>(?:db|users|tokens|serve|worker|files|"
                            r"validate|test|simulate|migrate) [^&>\n]*)")


def server_guide_commands() -> list[str]:
    text = SERVER_GUIDE.read_text("utf-8")
    return [match["args"].strip() for block in re.findall(r"```(?:sh|ini)\n(.*?)```", text, re.S)
            for match in DOCKET_COMMAND.finditer(block)]


def test_the_server_guide_shows_the_administration_it_promises() -> None:
    verbs = {" ".join(command.split()[:2]) for command in server_guide_commands()}
    assert {"db upgrade", "db backup", "db restore", "users add", "users deactivate", "tokens create",
            "files sweep"} <= verbs
    assert any(command.startswith("serve ") for command in server_guide_commands())
    assert any(command.startswith("worker ") for command in server_guide_commands())


@pytest.mark.parametrize("command", server_guide_commands())
def test_every_docket_command_in_the_server_guide_is_one_docket_accepts(command: str) -> None:
    import shlex

    from cli import build_parser

    build_parser().parse_args(shlex.split(command))  # argparse exits (a test error) on anything else


def test_every_setting_in_the_server_guide_is_one_docket_or_the_bundle_reads(capsys: pytest.CaptureFixture[str]) -> None:
    from cli import main

    with pytest.raises(SystemExit):
        main(["--help"])
    known = capsys.readouterr().out + "".join(path.read_text("utf-8") for path in
                                              [POSTAL / "bundle.yaml", *(POSTAL / "webhooks").glob("*.yaml")])
    named = set(re.findall(r"DOCKET_[A-Z_]+", SERVER_GUIDE.read_text("utf-8")))
    assert len(named) > 8 and sorted(name for name in named if name not in known) == []


def test_the_server_guide_settings_give_every_variable_the_postal_channels_name() -> None:
    """A channel variable left out is a warning at every start and every cron run, and its
    messages fail."""
    import yaml

    env_file = re.search(r"# /etc/docket/docket.env\n(.*?)```", SERVER_GUIDE.read_text("utf-8"), re.S)
    assert env_file is not None
    given = set(re.findall(r"^(DOCKET_[A-Z_]+)=", env_file[1], re.M))
    channels = yaml.safe_load((POSTAL / "bundle.yaml").read_text("utf-8"))["channels"]
    named = {value for channel in channels.values() for key, value in channel.items() if key.endswith("_env")}
    assert len(named) > 5 and sorted(named - given) == []


def test_nginx_in_the_server_guide_lets_through_every_body_docket_reads() -> None:
    """A body nginx refuses never reaches Docket, whose refusal says which file is too large."""
    from web.app import MAX_UPLOAD_BODY, PAGES_WITH_FILES

    (megabytes,) = re.findall(r"client_max_body_size (\d+)m;", SERVER_GUIDE.read_text("utf-8"))
    assert int(megabytes) * 1024 * 1024 >= max(MAX_UPLOAD_BODY, *PAGES_WITH_FILES.values())


def test_the_site_survey_guide_shows_the_errors_validate_gives_for_its_misspellings(
        site_survey: tuple[Path, list[str]]) -> None:
    bundle, _ = site_survey
    flow = bundle / "flows" / "complaint_handling.yaml"
    text = flow.read_text("utf-8")
    flow.write_text(text.replace("fields: [liability, basis]", "fields: [liabilty, basis]")
                    .replace('when: liability == "customer"', 'when: liability == "customers"'), encoding="utf-8")
    _loaded, diags = validate_bundle(bundle, build_registry(plugins=False))
    shown = [re.sub(r"^\S*?my_change/", "my_change/", format_diagnostic(d)) for d in diags]
    guide = (GUIDES / "add-a-site-survey.md").read_text("utf-8")
    assert len(shown) == 2 and all(line in guide for message in shown for line in message.splitlines())


# -- everyday-changes.md -------------------------------------------------------------------------
@pytest.fixture
def everyday(tmp_path: Path) -> tuple[Path, list[str]]:
    return guide_applied(tmp_path, "everyday-changes.md")


def test_the_everyday_guide_gives_a_valid_bundle_whose_scenarios_all_pass(everyday: tuple[Path, list[str]],
                                                                          tmp_path: Path) -> None:
    bundle, touched = everyday
    assert "sla/complaint_sla.yaml" in touched and "dashboards/overview.yaml" in touched
    loaded, diags = validate_bundle(bundle, build_registry(plugins=False))
    assert diags == [], "\n".join(format_diagnostic(d) for d in diags)
    assert loaded is not None and "customs_handling" in loaded.get("flow", "complaint_handling").nodes
    results = run_scenarios(bundle, db_folder=tmp_path / "dbs", registry=build_registry(plugins=False))
    failed = [format_diagnostic(p) for r in results for p in r.problems]
    assert failed == [] and len(results) == len(list((POSTAL / "scenarios").glob("*.yaml"))) + 3


EVERYDAY_SLIPS = [
    ("flows/complaint_handling.yaml", "    to: customs_handling", "    to: custom_handling",
     ["unknown node 'custom_handling'", "did you mean 'customs_handling'?"]),
    ("flows/complaint_handling.yaml", 'category == "customs_held"\n        to:', 'category == "customs_hold"\n        to:',
     ["'customs_hold' is not an option of 'category'", "did you mean 'customs_held'?"]),
    ("sla/complaint_sla.yaml", "resolution: 5 workdays", "resolution: 5 work days", ["did you mean '5 workdays'?"]),
    ("flows/complaint_handling.yaml", "(compensation or 0) > 8000", "(compensation or 0) > 8,000",
     ["'8,000' is read as 2 numbers, not one", "write 8000 without the thousands separator"]),
    ("dashboards/overview.yaml", "dimensions: [created.week, customs_status]",
     "dimensions: [created.weak, customs_status]", ["did you mean 'week'?"]),
    ("rules/complaint_rules.yaml", "to: {field: account_manager}\n        subject: \"VIP",
     "to: {role: account_manger}\n        subject: \"VIP", ["did you mean 'account_manager'?"]),
    ("forms/complaint.yaml", "    required_if: customs_no\n", '    required_if: customs_no != ""\n',
     ["my_change/forms/complaint.yaml:230:32: error: an empty field holds null, not \"\": the comparison holds "
      "for every record (at fields.customs_broker.required_if) [expr-empty-text]",
      "hint: write customs_no for 'has a value'"]),
]


@pytest.mark.parametrize("path, old, new, said", EVERYDAY_SLIPS, ids=[s[3][0][:40] for s in EVERYDAY_SLIPS])
def test_the_everyday_guide_says_what_validate_answers_to_each_slip(everyday: tuple[Path, list[str]], path: str,
                                                                    old: str, new: str, said: list[str]) -> None:
    bundle, _ = everyday
    target = bundle / path
    text = target.read_text("utf-8")
    assert text.count(old) == 1
    target.write_text(text.replace(old, new), encoding="utf-8")
    _loaded, diags = validate_bundle(bundle, build_registry(plugins=False))
    shown = "\n".join(re.sub(r"^\S*?my_change/", "my_change/", format_diagnostic(d)) for d in diags)
    guide = " ".join((GUIDES / "everyday-changes.md").read_text("utf-8").split())
    for words in said:
        assert words in shown and " ".join(words.split()) in guide


# -- start-a-new-process.md ----------------------------------------------------------------------
NEW_PROCESS_GUIDE = GUIDES / "start-a-new-process.md"
TARIFF = ROOT / "definitions" / "key_account_tariff"
REPLACE = re.compile(r"# replace: (?P<path>\S+)\n")
TEXT_BLOCK = re.compile(r"```text\n(?P<body>.*?)```", re.S)


def guide_shows(lines: str) -> None:
    """The lines (hashes shown as `...`) appear together, as printed, in one of the guide's outputs."""
    shown = [block["body"] for block in TEXT_BLOCK.finditer(NEW_PROCESS_GUIDE.read_text("utf-8"))]
    wanted = re.sub(r"hash [0-9a-f]+", "hash ...", lines.strip("\n")) + "\n"
    assert any(wanted in body for body in shown), f"the guide does not show:\n{wanted}"


def follow_the_new_process_guide(folder: Path, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the guide's `docket new`, remove what its `rm` names, write what its blocks give; the
    bundle folder. `docket new`'s output must be the guide's."""
    import glob

    from cli import main

    monkeypatch.chdir(folder)
    assert main(["new", "key_account_tariff"]) == 0
    guide_shows(capsys.readouterr().out)
    text = NEW_PROCESS_GUIDE.read_text("utf-8")
    (removals,) = re.findall(r"^rm (.*)$", text, re.M)
    for pattern in removals.split():
        for path in glob.glob(pattern):
            Path(path).unlink()
    bundle = folder / "key_account_tariff"
    for block in BLOCK.finditer(text):
        if replace := REPLACE.match(block["body"]):
            target = bundle / replace["path"]
            assert target.exists(), f"{replace['path']} is not there to replace"
            target.write_text(block["body"][replace.end():], encoding="utf-8")
    apply_guide(NEW_PROCESS_GUIDE, bundle)
    return bundle


@pytest.fixture
def new_process(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Path:
    return follow_the_new_process_guide(tmp_path, capsys, monkeypatch)


def test_the_new_process_guide_ends_with_the_example_bundle(new_process: Path) -> None:
    made = {p.relative_to(new_process).as_posix(): p.read_text("utf-8") for p in new_process.rglob("*") if p.is_file()}
    example = {p.relative_to(TARIFF).as_posix(): p.read_text("utf-8") for p in TARIFF.rglob("*") if p.is_file()}
    assert sorted(made) == sorted(example)
    assert [name for name in sorted(made) if made[name] != example[name]] == []


def test_the_new_process_guide_validates_as_it_shows(new_process: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cli import main

    assert main(["validate", "key_account_tariff"]) == 0
    guide_shows(capsys.readouterr().out)


def test_the_new_process_guide_s_scenarios_pass_as_it_shows(new_process: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    from cli import main

    assert main(["test", "key_account_tariff"]) == 0
    guide_shows(capsys.readouterr().out)


def test_the_new_process_guide_s_simulation_prints_what_it_shows(new_process: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from cli import main

    (command,) = re.findall(r"^\.venv/bin/docket (simulate .*)$", NEW_PROCESS_GUIDE.read_text("utf-8"), re.M)
    assert main(command.split()) == 0
    guide_shows(capsys.readouterr().out)


@pytest.mark.parametrize("file, written, mistake", [
    ("forms/tariff_request.yaml", 'en: "Attachments (quotes, contract)"', "en: Attachments (quotes, contract)"),
    ("flows/tariff_approval.yaml", "assign: {departments: [marketing, finance]}",
     "assign: {roles: [marketing_director, finance]}"),
])
def test_the_new_process_guide_shows_the_error_validate_gives_for_its_mistake(
        new_process: Path, capsys: pytest.CaptureFixture[str], file: str, written: str, mistake: str) -> None:
    from cli import main

    target = new_process / file
    target.write_text(target.read_text("utf-8").replace(written, mistake), encoding="utf-8")
    assert main(["validate", "key_account_tariff"]) == 1
    printed = capsys.readouterr()
    guide_shows("\n".join(line for line in (printed.out + printed.err).splitlines()
                          if not re.match(r"\d+ error", line)))


def test_every_docket_command_of_the_new_process_guide_is_one_docket_accepts() -> None:
    import shlex

    from cli import build_parser

    commands = re.findall(r"^\.venv/bin/docket (.*)$", NEW_PROCESS_GUIDE.read_text("utf-8"), re.M)
    assert {command.split()[0] for command in commands} == {"new", "validate", "test", "simulate", "serve"}
    for command in commands:
        build_parser().parse_args(shlex.split(command))
