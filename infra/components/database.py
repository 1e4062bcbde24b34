"""The cache database: versioned migrations, and the service's own least-privilege login.

Supabase is not a resource this stack creates; what the stack owns is the
schema in it. A Pulumi dynamic provider applies service/supabase/migrations
(the Supabase CLI's layout) with infra/migrations.py from the deploying
machine, over the stack's connection string (a secret), and records them where
`supabase migration list` reads them:
- preview (`diff`) connects and reports a change when a migration is
  pending or the service's role cannot log in (`rolcanlogin`), and fails on a
  migration edited after it was applied; the
  `migrations` input lists every file with its checksum, so the preview also
  shows which files are new;
- `pulumi up` (`create`/`update`) applies the pending migrations in order,
  each in its own transaction under an advisory lock, then lets the service's
  role `jobsearch_app` log in with its password (a secret), sent as a SCRAM
  verifier computed here, never in plain text;
- deleting the resource leaves the database alone: data outlives stacks.

The service's DATABASE_URL is that role's login, never the migrating user's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import psycopg
import pulumi
import pulumi.dynamic

from infra import migrations
from infra.config.database import APP_ROLE, MIN_APP_PASSWORD_LENGTH, database_url_problem
from jobsearch.logging_setup import Redactor

COMPONENT_TYPE = "jobsearch:platform:Database"
# The dynamic resource's type: pulumi-python:dynamic/jobsearch:Migrations.
MIGRATIONS_MODULE = "jobsearch"
MIGRATIONS_TYPE_NAME = "Migrations"
SECRET_INPUTS = ("database_url", "app_password")


def app_database_url(admin_url: str, password: str) -> str:
    """The service's login: the admin connection string with the app role and its password.

    Supabase's session pooler names the project in the user (`postgres.<ref>`);
    the app role then logs in as `jobsearch_app.<ref>` through the same pooler.
    """
    parts = urlsplit(admin_url)
    _, dot, project = unquote(parts.username or "").partition(".")
    user = f"{APP_ROLE}.{project}" if dot else APP_ROLE
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}{port}"
    return urlunsplit(parts._replace(netloc=netloc))


def migration_checksums(directory: Path = migrations.MIGRATIONS_DIR) -> dict[str, str]:
    return {migration.path.name: migration.checksum for migration in migrations.discover(directory)}


def _where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 5432}{parts.path or '/'}"


class DatabaseError(Exception):
    """A database failure, described without the connection string or password."""


class MigrationsProvider(pulumi.dynamic.ResourceProvider):
    """Applies the migrations; runs in the Pulumi engine's dynamic-provider process.

    Pickled by reference (module and class name), so the deploying checkout's
    code is what runs. `directory` is for tests; None means service/supabase/migrations.
    """

    def __init__(self, directory: str | None = None) -> None:
        super().__init__()
        self._directory = directory

    @property
    def directory(self) -> Path:
        return Path(self._directory) if self._directory else migrations.MIGRATIONS_DIR

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.CheckResult:
        failures = []
        url = news.get("database_url")
        problem = database_url_problem(url) if isinstance(url, str) else "is not set"
        if problem is not None:
            failures.append(pulumi.dynamic.CheckFailure("database_url", f"databaseUrl {problem}"))
        password = news.get("app_password")
        if not isinstance(password, str) or len(password) < MIN_APP_PASSWORD_LENGTH:
            failures.append(
                pulumi.dynamic.CheckFailure(
                    "app_password",
                    f"appDbPassword must be at least {MIN_APP_PASSWORD_LENGTH} characters",
                )
            )
        return pulumi.dynamic.CheckResult(news, failures)

    def diff(
        self, _id: str, olds: dict[str, Any], news: dict[str, Any]
    ) -> pulumi.dynamic.DiffResult:
        pending = self.pending(news)
        changed = [
            name
            for name in ("database_url", "app_password", "migrations")
            if olds.get(name) != news.get(name)
        ]
        # Someone (a restore, a runbook, `ops migrations apply`) may have left the
        # role without LOGIN while nothing else changed: `up` must give it back.
        url = str(news["database_url"])
        with self._errors_named(url, str(news.get("app_password", ""))):
            locked_out = not migrations.app_role_can_log_in(url)
        return pulumi.dynamic.DiffResult(
            changes=bool(pending or changed or locked_out), replaces=[], delete_before_replace=False
        )

    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        outs = self._apply(props)
        return pulumi.dynamic.CreateResult(
            id_=f"{APP_ROLE}@{_where(props['database_url'])}", outs=outs
        )

    def update(
        self, _id: str, _olds: dict[str, Any], news: dict[str, Any]
    ) -> pulumi.dynamic.UpdateResult:
        return pulumi.dynamic.UpdateResult(outs=self._apply(news))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing: removing the stack must not remove the cache or its schema."""

    def pending(self, props: dict[str, Any]) -> list[str]:
        """The migrations not applied yet; raises on one edited after it was applied."""
        url = str(props["database_url"])
        self._check_files(props)
        with self._errors_named(url, str(props.get("app_password", ""))):
            status = migrations.status(url, self.directory)
        if status.unknown:
            raise migrations.MigrationError(
                f"the database's migration history has {', '.join(status.unknown)}, which "
                "the checkout lacks; add those files (`supabase migration fetch`) first"
            )
        return status.pending

    def _check_files(self, props: dict[str, Any]) -> None:
        expected = props.get("migrations")
        on_disk = migration_checksums(self.directory)
        if expected != on_disk:
            raise migrations.MigrationError(
                "the migration files on disk differ from the ones this deployment was planned "
                "with; run the deployment again from one checkout"
            )

    def _apply(self, props: dict[str, Any]) -> dict[str, Any]:
        url = str(props["database_url"])
        password = str(props["app_password"])
        self._check_files(props)
        with self._errors_named(url, password):
            applied_now = migrations.apply(url, self.directory)
            migrations.set_app_role_password(url, password)
            status = migrations.status(url, self.directory)
        return {**props, "applied": status.applied, "applied_now": applied_now}

    def _errors_named(self, url: str, password: str) -> _DatabaseErrors:
        return _DatabaseErrors(url, password)


class _DatabaseErrors:
    """Turns driver errors into a one-line DatabaseError that names the server, not the
    credentials."""

    def __init__(self, url: str, password: str) -> None:
        self._url = url
        self._redactor = Redactor(s for s in (urlsplit(url).password, password, url) if s)

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, _tb: object
    ) -> None:
        if error is None or not isinstance(error, psycopg.Error):
            return
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        message = str(self._redactor.scrub(message))
        raise DatabaseError(f"database {_where(self._url)}: {message}") from None


class Migrations(pulumi.dynamic.Resource, module=MIGRATIONS_MODULE, name=MIGRATIONS_TYPE_NAME):
    """The schema of the cache database, at the version of the files in the checkout."""

    applied: pulumi.Output[list[str]]
    applied_now: pulumi.Output[list[str]]

    def __init__(
        self,
        name: str,
        *,
        database_url: pulumi.Input[str],
        app_password: pulumi.Input[str],
        directory: Path | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props: dict[str, Any] = {
            "database_url": database_url,
            "app_password": app_password,
            "migrations": migration_checksums(directory or migrations.MIGRATIONS_DIR),
            "applied": None,
            "applied_now": None,
        }
        super().__init__(
            MigrationsProvider(str(directory) if directory else None),
            name,
            props,
            pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(additional_secret_outputs=list(SECRET_INPUTS))
            ),
        )


@dataclass(frozen=True)
class DatabaseArgs:
    # A role that can migrate (Supabase: postgres), direct or session-mode.
    admin_url: pulumi.Input[str]
    # Given to the service's role; the service logs in with it.
    app_password: pulumi.Input[str]
    # The migration files; None means service/supabase/migrations.
    directory: Path | None = None


class Database(pulumi.ComponentResource):
    """Migrations applied, and the service's DATABASE_URL (a secret)."""

    app_database_url: pulumi.Output[str]
    applied: pulumi.Output[list[str]]

    def __init__(
        self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        admin_url: pulumi.Output[str] = pulumi.Output.secret(args.admin_url)
        password: pulumi.Output[str] = pulumi.Output.secret(args.app_password)
        schema = Migrations(
            f"{name}-migrations",
            database_url=admin_url,
            app_password=password,
            directory=args.directory,
            opts=pulumi.ResourceOptions(parent=self),
        )
        url: pulumi.Output[str] = pulumi.Output.all(admin_url, password).apply(
            lambda values: app_database_url(values[0], values[1])
        )
        # Resolves after the migrations ran (and the role may log in), never before.
        after_migrations: pulumi.Output[str] = pulumi.Output.all(url, schema.id).apply(
            lambda values: str(values[0])
        )
        self.app_database_url = pulumi.Output.secret(after_migrations)
        self.applied = schema.applied
        self.register_outputs({"applied": self.applied})
