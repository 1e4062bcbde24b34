"""Every setting the service reads, typed and validated once at startup.

This class is the single list of settings: `.env.example` and the README's
settings table are generated from its fields (jobsearch.settings_reference,
`make generate`), so a field's description is its documentation.

Where a value comes from, first found wins: the process environment, then a
`.env` file in the working directory, then a secret file in SECRETS_DIR (Docker
secrets: one file per setting, named like its variable, e.g.
/run/secrets/DATABASE_URL), then the default. So `make run` keeps working from
the environment and `.env`, and in a container a variable set by hand
overrides the mounted secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal, get_args

from limits import parse as parse_rate_limit
from pydantic import (
    AnyHttpUrl,
    Field,
    PostgresDsn,
    RedisDsn,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)

AppEnv = Literal["development", "staging", "production"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
SourceName = Literal["jsearch", "theirstack"]

# Where Docker (Swarm) mounts secrets: RAPID_API_KEY, THEIRSTACK_API_KEY,
# DATABASE_URL and SENTRY_DSN arrive there as files, one per setting, named like
# the variable. pydantic-settings strips the value, so a trailing newline (as
# `echo ... | docker secret create` leaves) is not part of it. Used only when it
# exists: pydantic-settings warns about a missing directory, and a host (`make
# run`, the tests) has none. Tests point it elsewhere by patching SECRETS_DIR;
# `Settings(_secrets_dir=...)` takes precedence over it, under the same rule.
SECRETS_DIR = Path("/run/secrets")

# A frontend key: long enough not to be guessed, and what a Bearer token may hold.
MIN_FRONTEND_KEY_CHARS = 16
_FRONTEND_KEY = re.compile(r"[A-Za-z0-9\-._~+/=]+")


class Settings(BaseSettings):
    """Service configuration, read from the environment, a `.env` file and secret files."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        case_sensitive=False,
        extra="ignore",
        hide_input_in_errors=True,
        # `KEY=` (as .env.example writes the optional ones) means unset, not "".
        env_ignore_empty=True,
    )

    rapid_api_key: SecretStr | None = Field(
        default=None,
        description="RapidAPI key for JSearch. Unset turns the JSearch source off.",
    )
    theirstack_api_key: SecretStr | None = Field(
        default=None,
        description="TheirStack API token. Unset turns the TheirStack source off.",
    )
    jsearch_base_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("https://jsearch.p.rapidapi.com"),
        description="Base URL of the JSearch API.",
    )
    theirstack_base_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("https://api.theirstack.com"),
        description="Base URL of the TheirStack API.",
    )
    database_url: SecretStr | None = Field(
        default=None,
        description=(
            "Postgres connection string for the cache (Supabase: direct or "
            "session-mode pooler, never the transaction pooler). Unset: no shared cache."
        ),
    )
    redis_url: RedisDsn | None = Field(
        default=None,
        description="Redis for the rate limit shared by all workers. Unset: per-process memory.",
    )
    app_env: AppEnv = Field(
        default="development",
        description="development, staging or production.",
    )
    sample_sources: Annotated[list[SourceName], NoDecode] = Field(
        default_factory=list,
        description=(
            "Comma-separated sources (jsearch, theirstack) whose base URL is a local stand-in "
            "serving sample data: their searches carry X-Sample-Data: true. Development only."
        ),
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated origins allowed to call the API from a browser.",
    )
    log_level: LogLevel = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR.")
    cache_ttl_minutes: int = Field(
        default=60, ge=1, le=7 * 24 * 60, description="How long a search result is reused."
    )
    upstream_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=60,
        description="Bound on one upstream attempt; a whole search waits at most 3x this.",
    )
    rate_limit: str = Field(
        default="30/minute",
        description=(
            "Searches allowed per client, in `limits` notation (e.g. 30/minute): per client "
            "IP, or per X-End-User when the request carries a valid frontend key."
        ),
    )
    jsearch_daily_budget: int | None = Field(
        default=None,
        ge=0,
        description=(
            "Searches sent to JSearch per UTC day, counted across every worker and replica "
            "(in Redis); once spent, cache misses get 503 budget_exhausted until midnight UTC. "
            "Unset: unlimited."
        ),
    )
    theirstack_daily_budget: int | None = Field(
        default=None,
        ge=0,
        description=(
            "Searches sent to TheirStack per UTC day, as JSEARCH_DAILY_BUDGET. Unset: unlimited."
        ),
    )
    sentry_dsn: SecretStr | None = Field(
        default=None, description="Sentry DSN for error reports. Unset: Sentry is off."
    )
    frontend_api_keys: SecretStr | None = Field(
        default=None,
        description=(
            "Comma-separated keys the frontend sends as `Authorization: Bearer <key>` "
            "(two while one is rotated). Unset: /api/jobs/* is open to anyone."
        ),
    )
    request_body_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description=(
            "How long a request's body may take to arrive, from its headers on; a slower "
            "client is answered 408 request_timeout and its connection closed."
        ),
    )
    max_concurrent_requests: int = Field(
        default=100,
        ge=1,
        le=10_000,
        description=(
            "Requests one worker serves at once; beyond it a request is refused at once with "
            "503 overloaded (Retry-After: 1). /health and /metrics are never refused."
        ),
    )
    host: str = Field(default="127.0.0.1", description="Interface the server binds.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port the server binds.")
    workers: int = Field(default=1, ge=1, le=32, description="Uvicorn worker processes.")
    replicas: int = Field(
        default=1,
        ge=1,
        le=64,
        description=(
            "Replicas of the service sharing RATE_LIMIT (the topology sets it). Where the "
            "limit is counted per process (Redis unset or down), each process allows "
            "RATE_LIMIT / (REPLICAS x WORKERS), at least 1."
        ),
    )
    forwarded_allow_ips: str = Field(
        default="127.0.0.1",
        description="Comma-separated proxy IPs or CIDRs whose X-Forwarded-* headers are trusted.",
    )

    @field_validator("sample_sources", mode="before")
    @classmethod
    def _split_sources(cls, value: object) -> object:
        if isinstance(value, str):
            return [name.strip().lower() for name in value.split(",") if name.strip()]
        return value

    @field_validator("sample_sources")
    @classmethod
    def _samples_in_development_only(
        cls, sources: list[SourceName], info: ValidationInfo
    ) -> list[SourceName]:
        # app_env is declared first, so it is validated by now.
        app_env = info.data.get("app_env")
        if sources and app_env != "development":
            raise ValueError(
                f"SAMPLE_SOURCES is for development only (APP_ENV is {app_env}): "
                "unset it, and give the sources real keys and base URLs"
            )
        return list(dict.fromkeys(sources))

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip().rstrip("/") for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins_are_urls(cls, origins: list[str], info: ValidationInfo) -> list[str]:
        # app_env is declared first, so it is validated by now.
        if "*" in origins and info.data.get("app_env") == "production":
            raise ValueError("* is refused when APP_ENV=production; list the origins")
        for origin in origins:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise ValueError(f"{origin!r} is not an origin like https://app.example.com")
        return origins

    @field_validator("rate_limit")
    @classmethod
    def _rate_limit_parses(cls, value: str) -> str:
        try:
            parse_rate_limit(value)
        except ValueError:
            raise ValueError("must look like 30/minute or 5/second") from None
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url_is_postgres(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        try:
            PostgresDsn(value.get_secret_value())
        except ValidationError:
            # The message must not echo the DSN: it carries a password.
            raise ValueError(
                "must be a postgresql:// URL (percent-encode special characters in the password)"
            ) from None
        return value

    @field_validator("frontend_api_keys", mode="after")
    @classmethod
    def _frontend_keys_are_usable(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        keys = [key.strip() for key in value.get_secret_value().split(",") if key.strip()]
        if not keys:
            return None
        for key in keys:
            # The messages never echo a key.
            if len(key) < MIN_FRONTEND_KEY_CHARS:
                raise ValueError(f"each key must be at least {MIN_FRONTEND_KEY_CHARS} characters")
            if not _FRONTEND_KEY.fullmatch(key):
                raise ValueError(
                    "a key may hold letters, digits and - . _ ~ + / = only (no spaces)"
                )
        return SecretStr(",".join(keys))

    @field_validator("rapid_api_key", "theirstack_api_key", "sentry_dsn", mode="after")
    @classmethod
    def _empty_secret_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # pydantic-settings' own order (see the module docstring): environment, .env,
        # then secret files. The directory is `_secrets_dir` when one is given, else
        # SECRETS_DIR, and only if it exists, so that no warning is printed.
        if isinstance(file_secret_settings, SecretsSettingsSource):
            wanted = file_secret_settings.secrets_dir or SECRETS_DIR
            listed = [wanted] if isinstance(wanted, (str, Path)) else list(wanted)
            existing = [directory for directory in listed if Path(directory).is_dir()]
            file_secret_settings.secrets_dir = existing or None
        return init_settings, env_settings, dotenv_settings, file_secret_settings

    @property
    def secret_values(self) -> list[str]:
        """Every secret string, so that log redaction can scrub them."""
        secrets: list[str] = []
        for name in SECRET_SETTINGS:
            value = getattr(self, name.lower())
            if value is not None:
                secrets.append(value.get_secret_value())
        if self.redis_url is not None and self.redis_url.password:
            secrets.append(self.redis_url.password)
        secrets.extend(self.frontend_keys)
        return secrets

    @property
    def processes(self) -> int:
        """Service processes in the deployment: what a per-process share divides by."""
        return self.replicas * self.workers

    @property
    def frontend_keys(self) -> tuple[str, ...]:
        """The frontend keys, each on its own; empty when the API is open."""
        if self.frontend_api_keys is None:
            return ()
        return tuple(self.frontend_api_keys.get_secret_value().split(","))


# The settings that carry credentials: every field typed SecretStr. The platform
# hands each to the service as a Docker secret file, never in the environment.
SECRET_SETTINGS: tuple[str, ...] = tuple(
    name.upper()
    for name, field in Settings.model_fields.items()
    if SecretStr in (field.annotation, *get_args(field.annotation))
)


def settings_from(values: Mapping[str, object]) -> Settings:
    """Settings from these values alone: no environment variable, no .env file, no secret file.

    For checking settings meant for somewhere else (a stack's containers), which
    the machine doing the check must not colour. model_validate would not do:
    pydantic-settings fills every field not given from the environment and .env.
    """
    # A blank value means unset, as env_ignore_empty makes it in the running service.
    return _ExplicitSettings.model_validate({k: v for k, v in values.items() if v != ""})


def describe_validation_error(error: ValidationError) -> str:
    """One line naming each bad setting by its environment variable, never its value."""
    problems = []
    for item in error.errors(include_input=False, include_url=False):
        name = str(item["loc"][0]).upper() if item["loc"] else "settings"
        message = str(item["msg"]).removeprefix("Value error, ")
        problems.append(f"{name}: {message}")
    return "invalid setting: " + "; ".join(problems)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


class _ExplicitSettings(Settings):
    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)
