"""What a migration connection string must be, and the service's own database role."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

# The Supavisor transaction pooler: it drops prepared statements between
# transactions, which psycopg relies on (service/jobsearch/settings.py).
TRANSACTION_POOLER_PORT = 6543
APP_ROLE = "jobsearch_app"
MIN_APP_PASSWORD_LENGTH = 24


def database_url_problem(url: str) -> str | None:
    """Why a migration connection string is unusable, without echoing it (it has a password)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "is not a postgresql:// connection string"
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
        return "is not a postgresql://user:password@host:port/database connection string"
    if not parts.username or not parts.password:
        return "must name the user and its password (postgresql://user:password@host...)"
    if port == TRANSACTION_POOLER_PORT:
        return (
            f"points at the transaction pooler (port {TRANSACTION_POOLER_PORT}); use the direct "
            "connection or the session-mode pooler (port 5432)"
        )
    if unquote(parts.username).split(".", 1)[0] == APP_ROLE:
        return f"must be a role that can migrate, not the service's own role {APP_ROLE}"
    return None
