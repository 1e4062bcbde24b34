"""The runbook checks find what they are meant to find (else a clean result means nothing)."""

from __future__ import annotations

import pytest

from tests.runbooks import checks
from tests.runbooks.shell import commands


def sh(*lines: str) -> str:
    return "```sh\n" + "\n".join(lines) + "\n```\n"


@pytest.mark.parametrize(
    ("snippet", "problem"),
    [
        (sh("ops statuz --stack prod"), "is not an ops command"),
        (sh('ops status --stack "$STACK" --verbose'), "has no option --verbose"),
        (sh("ops status --stack production"), "ops refuses these arguments"),
        (sh("ops rollback --stack prod --to latest"), "ops refuses these arguments"),
        (sh("ops migrations status --database"), "has no option --database"),
        (sh("make deploy"), "no target 'deploy'"),
        (sh("opz diagnose --url https://x"), "'opz' is neither"),
        (sh('ssh deploy@"$HOST" dokcer ps'), "'dokcer' is neither"),
        (sh("ssh deploy@\"$HOST\" 'docker logs $(dokcer ps -q)'"), "'dokcer' is neither"),
        (sh('ops diagnose --url "$(pulumi stack output url -s preprod)"'), "no stack 'preprod'"),
        (sh("pulumi up --policy-pack infra/policies -s prod"), "infra/policies does not exist"),
        ("```bash\nls\n```\n", "not sh"),
        ("Set RAPIDAPI_KEY first.", "RAPIDAPI_KEY is neither a setting"),
        ("Raise `jobsearch:rateLimits`.", "jobsearch:rateLimits is not declared"),
        ("See tests/smoke/test_nothing.py.", "tests/smoke/test_nothing.py does not exist"),
        ("See [the other](no-such-runbook.md).", "no-such-runbook.md goes nowhere"),
        (sh("docker logs jobsearch-prod-postgresql"), "no service jobsearch-<stack>-postgresql"),
        (sh("docker ps --filter label=org.jobsearch.role=worker"), "never 'worker'"),
        (sh('psql "$DATABASE_URL" -c "select 1"'), "a password on the command line"),
        (sh("psql postgresql://postgres:pw@db:5432/postgres"), "a password on the command line"),
        (
            sh('supabase inspect db locks --db-url "$DATABASE_URL"'),
            "a password on the command line",
        ),
        (sh('supabase inspect db outliers --db-url "$DB_URL"'), "is not tested here"),
        (sh("supabase inspect db locks"), "without --db-url"),
        (sh("supabase db reset"), "for `inspect db` only"),
    ],
)
def test_a_stale_runbook_is_caught(snippet: str, problem: str) -> None:
    problems = checks.all_problems(snippet)

    assert any(problem in found for found in problems), problems


def test_pulumi_stack_outputs_are_checked_once_the_program_exports_them() -> None:
    if checks.stack_outputs() is None:
        pytest.skip("infra/__main__.py does not exist yet")
    problems = checks.all_problems(sh("pulumi stack output no_such_output -s prod"))
    assert any("no output 'no_such_output'" in found for found in problems)


@pytest.mark.parametrize(
    "snippet",
    [
        sh('ops diagnose --url "$URL"', "ops status --stack local --json", "make local"),
        sh('export DATABASE_URL="$(pulumi config get jobsearch:databaseUrl -s "$STACK")"'),
        sh('psql "$DB_URL" -c "select 1"', 'supabase inspect db bloat --db-url "$DB_URL"'),
        sh("ssh deploy@\"$HOST\" 'docker logs $(docker ps -q | head -n 1) 2>&1 | tail'"),
        "RATE_LIMIT and DATABASE_URL are settings; `jobsearch:imageRef` a key.",
    ],
)
def test_a_correct_snippet_passes(snippet: str) -> None:
    assert checks.all_problems(snippet) == []


def test_commands_are_found_inside_substitutions_pipes_and_ssh() -> None:
    found = commands(
        'URL="$(pulumi stack output url -s prod)"\n'
        "ssh -p 22 deploy@host 'docker ps -q | head -n 1' && curl -s \"$URL\" 2>&1 | tail\n"
    )

    assert [c.name for c in found] == ["pulumi", "ssh", "docker", "head", "curl", "tail"]
    assert found[4].argv == ("curl", "-s", "$URL")
