"""What the server guide (docs/guides/run-on-a-server.md) tells an operator to write works as
written on a Debian-like server: the cron file finds the commands it runs, the quoting advice
for the settings file covers every character the shell would misread, and the settings file
names every secret the postal bundle needs."""

from __future__ import annotations

import re
import shutil
import string
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "guides" / "run-on-a-server.md"
POSTAL = ROOT / "definitions" / "postal_complaints"
CRON_DEFAULT_PATH = "/usr/bin:/bin"
"""The PATH cron gives the commands of /etc/cron.d files (crontab(5))."""


def block_after(marker: str) -> str:
    """What follows the line `marker` in its fenced block of the guide."""
    for block in re.findall(r"```\w*\n(.*?)```", GUIDE.read_text("utf-8"), re.S):
        if f"{marker}\n" in block:
            return block.split(f"{marker}\n", 1)[1]
    raise AssertionError(f"no block holds the line {marker}")


def test_the_cron_file_finds_runuser_which_docket_admin_calls() -> None:
    wrapper = block_after("#!/bin/sh")
    assert re.search(r"\bexec runuser\b", wrapper)  # called by name, found on PATH
    if shutil.which("runuser") is None:
        pytest.skip("runuser (util-linux) is not installed here")
    cron = block_after("# /etc/cron.d/docket")
    given = re.findall(r"^PATH=(\S+)$", cron, re.M)
    path = given[0] if given else CRON_DEFAULT_PATH
    assert shutil.which("runuser", path=path), f"cron's PATH {path} has no runuser"


def shell_reads_verbatim(value: str, tmp_path: Path) -> bool:
    """Whether `. file` in sh (as docket-admin sources the settings) reads X=value as value."""
    settings = tmp_path / "docket.env"
    settings.write_text(f"X={value}\n", encoding="utf-8")
    read = subprocess.run(["sh", "-c", 'set -a; . "$1" 2>/dev/null; set +a; printf %s "$X"', "sh",
                           str(settings)], capture_output=True, text=True, cwd=tmp_path, timeout=10)
    return read.stdout == value


def quoting_advice() -> str:
    text = " ".join(GUIDE.read_text("utf-8").split())
    found = re.search(r"agree on single quotes: (.*?)A value cannot hold a single quote", text)
    assert found is not None
    return found[1]


def test_the_quoting_advice_names_every_character_the_shell_misreads_unquoted(tmp_path: Path) -> None:
    misread = [c for c in string.punctuation + " " if c != "'" and not shell_reads_verbatim(f"a{c}b", tmp_path)]
    assert "&" in misread and "$" in misread  # the probe works
    advice = quoting_advice()
    named = set(re.search(r"``? ?(.*?) ?``? in them", advice)[1].split()) | ({" "} if "spaces" in advice else set())
    assert sorted(set(misread) - named) == []


def test_a_value_in_single_quotes_reads_the_same_in_the_shell(tmp_path: Path) -> None:
    every = "".join(c for c in string.punctuation if c != "'") + " x"
    settings = tmp_path / "docket.env"
    settings.write_text(f"X='{every}'\n", encoding="utf-8")
    read = subprocess.run(["sh", "-c", 'set -a; . "$1"; set +a; printf %s "$X"', "sh", str(settings)],
                          capture_output=True, text=True, timeout=10)
    assert read.stdout == every


def test_the_settings_file_names_the_secret_of_every_inbound_webhook_of_the_bundle() -> None:
    given = set(re.findall(r"^(DOCKET_[A-Z_]+)=", block_after("# /etc/docket/docket.env"), re.M))
    secrets = {yaml.safe_load(path.read_text("utf-8"))["secret_env"] for path in (POSTAL / "webhooks").glob("*.yaml")}
    assert secrets and sorted(secrets - given) == []


def test_the_postgresql_cron_line_escapes_every_percent_and_says_where_pg_dump_finds_the_password() -> None:
    (line,) = [line for line in block_after("# /etc/cron.d/docket on PostgreSQL").splitlines()
               if line.strip() and not line.startswith("#")]
    assert "pg_dump" in line
    assert re.search(r"(?<!\\)%", line) is None  # cron would end the command at a bare %
    assert ".pgpass" in GUIDE.read_text("utf-8") and "chmod 600 /root/.pgpass" in GUIDE.read_text("utf-8")


def test_the_postgresql_cron_command_runs_as_the_shell_reads_it() -> None:
    """With cron's `\\%` put back to `%`, the command is one the shell parses (dry: sh -n)."""
    (line,) = [line for line in block_after("# /etc/cron.d/docket on PostgreSQL").splitlines()
               if line.strip() and not line.startswith("#")]
    command = line.split(" root ", 1)[1].replace("\\%", "%")
    assert subprocess.run(["sh", "-n", "-c", command], capture_output=True, timeout=10).returncode == 0
