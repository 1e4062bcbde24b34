"""README's first five minutes are real: the two commands, a search that returns sample jobs
from `make local`'s default URL, `ops diagnose`, one `ops local fault` and the runbook it names."""

from __future__ import annotations

import re
import shlex
from typing import Any

import httpx

from infra.local.state import LocalConfig
from infra.ops.fault import fault_for
from jobsearch.main import create_app
from jobsearch.models import JobSearchRequest
from tests.runbooks import checks
from tests.runbooks.shell import Command, blocks, commands

README = checks.ROOT / "README.md"
FIRST_MINUTES = "### The first five minutes"


def opening() -> str:
    """Everything above the first `## ` section: the two commands and the first minutes."""
    text = README.read_text()
    return text[: text.index("\n## ")]


def first_minutes() -> str:
    text = opening()
    return text[text.index(FIRST_MINUTES) :]


def sh_commands(text: str) -> list[Command]:
    return [c for block in blocks(text) if block.lang == "sh" for c in commands(block.body)]


def the_curl() -> list[str]:
    found = [c for c in sh_commands(first_minutes()) if c.name == "curl"]
    assert len(found) == 1, found
    return shlex.split(found[0].text)


def option(argv: list[str], name: str) -> str:
    assert argv.count(name) == 1, f"curl needs exactly one {name}: {argv}"
    return argv[argv.index(name) + 1]


def test_the_two_commands_open_the_readme() -> None:
    first_block = blocks(opening())[0]
    assert [c.argv for c in commands(first_block.body)] == [("make", "local"), ("make", "test")]
    assert opening().index(first_block.body) < opening().index(FIRST_MINUTES)


def test_every_command_of_the_first_minutes_exists_and_parses() -> None:
    found = sh_commands(first_minutes())
    assert {c.name for c in found} >= {"curl", "ops"}
    problems = [problem for c in found for problem in checks.check_command(c)]
    assert problems == []
    assert checks.all_problems(first_minutes(), README.parent) == []


def test_every_url_is_make_locals_default() -> None:
    default = f"http://127.0.0.1:{LocalConfig().http_port}"
    urls = re.findall(r"https?://[\w.:-]+", first_minutes())
    assert urls
    assert set(urls) == {default}


def test_the_search_is_a_request_the_api_takes() -> None:
    argv = the_curl()
    assert option(argv, "-X") == "POST"
    assert option(argv, "-H").lower().replace(" ", "") == "content-type:application/json"
    url = next(token for token in argv if token.startswith("http"))
    path = httpx.URL(url).path
    operations = create_app().openapi()["paths"].get(path, {})
    assert "post" in operations, f"the API has no POST {path}"
    JobSearchRequest.model_validate_json(option(argv, "-d"))


def test_the_search_returns_sample_jobs(run_service: Any, fakes: Any) -> None:
    """The README's body, sent to the service in front of the stand-in's bundled sample."""
    argv = the_curl()
    path = httpx.URL(next(token for token in argv if token.startswith("http"))).path
    fakes.listings = "sample"
    try:
        with run_service() as url:
            answer = httpx.post(
                url + path,
                content=option(argv, "-d"),
                headers={"Content-Type": "application/json"},
                timeout=30,
            )
    finally:
        fakes.listings = "generated"
    assert answer.status_code == 200, answer.text
    document = answer.json()
    assert document["total"] == len(document["jobs"]) > 0


def test_the_fault_names_the_runbook_the_readme_links() -> None:
    faults = [c for c in sh_commands(first_minutes()) if c.argv[1:3] == ("local", "fault")]
    assert faults, "the first minutes break something with `ops local fault`"
    target, mode = faults[0].argv[3:5]
    fault = fault_for(target, mode)
    assert fault.alert is not None, f"`ops local fault {target} {mode}` trips no alert"
    runbook = f"runbooks/{fault.alert}.md"
    assert f"]({runbook})" in first_minutes()
    assert (checks.ROOT / runbook).is_file()
    undo = [c for c in faults if c.argv[3] == target and c.argv[4] != mode]
    assert undo, "the first minutes end with the fault undone"
