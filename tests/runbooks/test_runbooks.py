"""The runbooks cannot go stale: every alert has one, and what they tell you to run exists."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from infra.alerts import ALERTS, DEFAULT_RUNBOOK_BASE_URL
from infra.generated import GENERATED, stale
from tests.runbooks import checks
from tests.runbooks.shell import blocks, commands

RUNBOOKS = checks.RUNBOOKS
PROCEDURES = (
    "deploy",
    "promote",
    "rollback",
    "rotate-secret",
    "restore-cache-database",
    "search-is-broken",
)
INDEX = "README.md"
ALERT_SECTIONS = ("## Meaning", "## Impact", "## Diagnosis", "## Mitigation")
OPERATIONS_DOC = checks.ROOT / "docs" / "operations.md"

ALL_DOCUMENTS = sorted(RUNBOOKS.glob("*.md"))


def section(text: str, heading: str) -> str:
    start = text.index(heading + "\n") + len(heading) + 1
    following = re.search(r"^## ", text[start:], re.MULTILINE)
    return text[start : start + following.start()] if following else text[start:]


@pytest.mark.parametrize("alert", ALERTS, ids=lambda alert: alert.name)
def test_every_alert_runbook_url_resolves_to_a_file_here(alert: object) -> None:
    url = alert.runbook_url()  # type: ignore[attr-defined]
    repository_path = urlsplit(url).path.split("/blob/main/", 1)[1]
    assert (checks.ROOT / repository_path).is_file(), url
    assert repository_path == f"runbooks/{alert.name}.md"  # type: ignore[attr-defined]


def test_the_default_runbook_base_url_points_at_this_directory() -> None:
    assert DEFAULT_RUNBOOK_BASE_URL.endswith("/blob/main/runbooks")


def test_every_runbook_is_an_alert_a_procedure_or_the_index() -> None:
    expected = {f"{a.name}.md" for a in ALERTS} | {f"{p}.md" for p in PROCEDURES} | {INDEX}
    assert {path.name for path in RUNBOOKS.glob("*.md")} == expected
    assert not [p for p in RUNBOOKS.iterdir() if p.suffix != ".md"]


@pytest.mark.parametrize("alert", ALERTS, ids=lambda alert: alert.name)
def test_an_alert_runbook_has_the_four_sections_in_order(alert: object) -> None:
    name = alert.name  # type: ignore[attr-defined]
    text = (RUNBOOKS / f"{name}.md").read_text()
    assert text.startswith(f"# {name}\n"), "the title is the alert's name"
    headings = re.findall(r"^## .+$", text, re.MULTILINE)
    assert headings == list(ALERT_SECTIONS)
    for heading in ALERT_SECTIONS:
        assert section(text, heading).strip(), f"{heading} is empty"


@pytest.mark.parametrize("alert", ALERTS, ids=lambda alert: alert.name)
def test_diagnosis_is_commands_to_run(alert: object) -> None:
    text = (RUNBOOKS / f"{alert.name}.md").read_text()  # type: ignore[attr-defined]
    diagnosis = section(text, "## Diagnosis")
    found = blocks(diagnosis)
    assert found, "Diagnosis has no ```sh block"
    assert {block.lang for block in found} == {"sh"}
    assert sum(len(commands(block.body)) for block in found) >= 3


@pytest.mark.parametrize("procedure", PROCEDURES)
def test_a_procedure_has_commands(procedure: str) -> None:
    found = blocks((RUNBOOKS / f"{procedure}.md").read_text())
    assert any(block.lang == "sh" and commands(block.body) for block in found)


@pytest.mark.parametrize("path", ALL_DOCUMENTS, ids=lambda path: path.name)
def test_what_a_runbook_names_exists(path: Path) -> None:
    assert checks.all_problems(path.read_text(), path.parent) == []


def test_the_alert_index_is_generated_from_the_alerts() -> None:
    index = next(item for item in GENERATED if item.path == Path("runbooks") / INDEX)
    assert stale([index]) == [], "run `make generate`"
    text = (RUNBOOKS / INDEX).read_text()
    for alert in ALERTS:
        assert f"| [{alert.name}]({alert.name}.md) | {alert.severity} |" in text


def test_the_operations_doc_links_the_alert_index_rather_than_copying_it() -> None:
    text = OPERATIONS_DOC.read_text()
    assert "(../runbooks/README.md#alerts)" in text
    assert [alert.name for alert in ALERTS if alert.name in text] == []


def test_the_operations_doc_is_held_to_the_same_checks() -> None:
    assert checks.all_problems(OPERATIONS_DOC.read_text(), OPERATIONS_DOC.parent) == []


def test_each_allowed_non_setting_name_is_defined_where_it_says() -> None:
    for name, defined_in in checks.NOT_SETTINGS.items():
        assert name in (checks.ROOT / defined_in).read_text(), (name, defined_in)


def test_the_runbooks_do_run_the_ops_cli_for_each_command() -> None:
    used = set()
    for path in ALL_DOCUMENTS:
        for block in blocks(path.read_text()):
            for command in commands(block.body):
                if command.name == "ops":
                    used.add(command.argv[1])
    assert {"status", "diagnose", "rollback", "migrations"} <= used
