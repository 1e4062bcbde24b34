#!/bin/sh
# First start: create the cluster with the superuser password and the database.
# Every start: run postgres in the foreground as PID 1 (SIGINT = fast shutdown).
# Like the official image, the password may come from a file (a Docker secret).
set -eu

if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
    POSTGRES_PASSWORD="$(cat "$POSTGRES_PASSWORD_FILE")"
fi
: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE must be set}"
: "${POSTGRES_DB:=postgres}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    password_file="$(mktemp)"
    printf '%s\n' "$POSTGRES_PASSWORD" > "$password_file"
    initdb --pgdata="$PGDATA" --username=postgres --pwfile="$password_file" \
        --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 >/dev/null
    rm -f "$password_file"
    echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    pg_ctl --pgdata="$PGDATA" --options="-c listen_addresses=''" --wait start >/dev/null
    if [ "$POSTGRES_DB" != "postgres" ]; then
        psql --username=postgres --dbname=postgres --quiet \
            --command="create database \"$POSTGRES_DB\"" >/dev/null
    fi
    pg_ctl --pgdata="$PGDATA" --mode=fast --wait stop >/dev/null
fi

exec postgres -D "$PGDATA"
