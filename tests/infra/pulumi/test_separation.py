"""Staging and prod never share a database or an API key (infra/separation.py).

Staging exports one-way fingerprints; prod, under Pulumi's mocks, reads them
through the StackReference it promotes from and refuses to deploy on a match.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from infra import separation
from tests.infra.pulumi.graph import Graph, is_secret, run_program
from tests.infra.pulumi.stack_config import (
    FAKE_SECRETS,
    STAGING_EXPORTS,
    STAGING_SEPARATE_VALUES,
    committed_stack,
)

SERVICE = "docker:index/service:Service"
FINGERPRINTED = ("jobsearch:databaseUrl", "jobsearch:rapidApiKey", "jobsearch:theirstackApiKey")
ORGANIZATION = "organization"  # the mocks' organization (tests/infra/pulumi/harness.py)


def staging_exporting(separation_output: Any) -> dict[str, Any]:
    return {**STAGING_EXPORTS, "separation": separation_output}


def prod_refusal(exports: dict[str, Any]) -> str:
    run = committed_stack("prod")
    run.staging_exports = exports
    graph = run_program(run)
    assert graph.error is not None, "prod deployed"
    assert graph.error["type"] == "ConfigError"
    assert graph.resources == [], "refused before any resource"
    for value in FAKE_SECRETS.values():
        assert value not in json.dumps(graph.error), "the refusal echoes a secret"
    return str(graph.error["message"])


# --- the fingerprints ------------------------------------------------------------


def test_one_supabase_project_is_one_database_however_it_is_reached() -> None:
    pooler = "postgresql://postgres.abcdefghijklmnopqrst:pw@aws-0-eu-central-1.pooler.supabase.com:5432/postgres"
    direct = "postgresql://postgres:other@db.abcdefghijklmnopqrst.supabase.co:5432/postgres"
    other = "postgresql://postgres.zyxwvutsrqponmlkjihg:pw@aws-0-eu-central-1.pooler.supabase.com:5432/postgres"
    identity = separation.database_identity
    assert identity(pooler) == identity(direct) == "supabase:abcdefghijklmnopqrst"
    assert identity(other) != identity(pooler), "the pooler's host serves every project"
    assert identity("postgresql://a:b@DB.Example.NET:5433/x") == identity(
        "postgresql://c:d@db.example.net:5432/y"
    ), "one server, whatever the port or database"


def test_a_fingerprint_is_slow_salted_and_reveals_nothing() -> None:
    exported = separation.export(STAGING_SEPARATE_VALUES, ORGANIZATION)
    text = json.dumps(exported)
    fingerprints = exported["fingerprints"]
    assert isinstance(fingerprints, dict)
    assert sorted(fingerprints) == sorted(FINGERPRINTED)
    for name, value in STAGING_SEPARATE_VALUES.items():
        assert value not in text
        plain = hashlib.sha256(value.encode()).hexdigest()
        assert plain not in text, f"{name}: a bare SHA-256, open to guessing"
        expected = hashlib.scrypt(
            value.encode(),
            salt=f"{ORGANIZATION}/jobsearch/stack-separation".encode(),
            n=2**14,
            r=8,
            p=1,
            dklen=32,
        ).hex()
        assert fingerprints[f"jobsearch:{name}"] == expected
    other = separation.export(STAGING_SEPARATE_VALUES, "another-org")["fingerprints"]
    assert isinstance(other, dict)
    assert set(other.values()).isdisjoint(fingerprints.values()), "salted per organization"


# --- staging exports them, plain ---------------------------------------------------


def test_staging_exports_a_plain_fingerprint_of_its_database_and_each_api_key(
    staging: Graph,
) -> None:
    assert staging.raw_outputs is not None
    assert not is_secret(staging.raw_outputs["separation"]), "the export must be plain"
    exported = staging.outputs["separation"]
    assert exported["scheme"] == separation.SCHEME
    assert exported["organization"] == ORGANIZATION
    assert sorted(exported["fingerprints"]) == sorted(FINGERPRINTED)
    expected = separation.export(
        {
            "databaseUrl": "supabase:prjref",
            "rapidApiKey": FAKE_SECRETS["rapidApiKey"],
            "theirstackApiKey": FAKE_SECRETS["theirstackApiKey"],
        },
        ORGANIZATION,
    )
    assert exported == expected
    text = json.dumps(exported)
    for value in FAKE_SECRETS.values():
        assert value not in text


def test_prod_separate_from_staging_deploys(prod: Graph) -> None:
    assert prod.error is None
    assert [read["id"] for read in prod.reads] == ["organization/jobsearch/staging"]


# --- prod refuses what it shares ------------------------------------------------------


def test_prod_refuses_a_staging_that_shares_everything(staging: Graph) -> None:
    # The committed stacks' fake secrets are the same for both: what a copy-paste does.
    message = prod_refusal(staging_exporting(staging.outputs["separation"]))
    assert message.startswith('stack "prod" is not configured correctly:')
    assert (
        "  - jobsearch:databaseUrl points at the same database as organization/jobsearch/staging's"
        in message
    )
    assert "give prod a database (a Supabase project) of its own" in message
    for key in FINGERPRINTED:
        assert f"    Fix: pulumi config set --secret {key} " in message
    assert message.count(" -s prod") == 3


def test_prod_names_the_one_key_it_shares() -> None:
    shared = {**STAGING_SEPARATE_VALUES, "rapidApiKey": FAKE_SECRETS["rapidApiKey"]}
    message = prod_refusal(staging_exporting(separation.export(shared, ORGANIZATION)))
    assert (
        "  - jobsearch:rapidApiKey is the same RapidAPI (JSearch) key as "
        "organization/jobsearch/staging's" in message
    )
    assert "    Fix: pulumi config set --secret jobsearch:rapidApiKey <key> -s prod" in message
    assert "jobsearch:databaseUrl" not in message
    assert "jobsearch:theirstackApiKey" not in message


def test_prod_refuses_staging_s_supabase_project_reached_another_way() -> None:
    # Staging connects to the project directly; prod (FAKE_SECRETS) through the pooler.
    direct = "postgresql://postgres:x@db.prjref.supabase.co:5432/postgres"
    shared = {**STAGING_SEPARATE_VALUES, "databaseUrl": separation.database_identity(direct)}
    message = prod_refusal(staging_exporting(separation.export(shared, ORGANIZATION)))
    assert "jobsearch:databaseUrl points at the same database" in message
    assert "jobsearch:rapidApiKey" not in message


@pytest.mark.parametrize("exported", [None, "not a mapping", {"scheme": "sha256"}])
def test_prod_refuses_a_staging_it_cannot_check(exported: Any) -> None:
    exports = dict(STAGING_EXPORTS)
    if exported is None:
        del exports["separation"]
    else:
        exports["separation"] = exported
    message = prod_refusal(exports)
    assert "stack organization/jobsearch/staging exports no separation output" in message
    assert "deploy it first with `pulumi up -s organization/jobsearch/staging`" in message
