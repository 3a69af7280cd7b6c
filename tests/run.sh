#!/usr/bin/env bash
# The test command: `bash tests/run.sh [pytest args...]`.
#
# On a fresh Debian 12 machine it installs what is missing (apt: postgresql, redis-server,
# dovecot-imapd, chromium, chromium-driver; pip: requirements.txt into .venv), starts a
# throwaway PostgreSQL and Redis on 127.0.0.1 (free ports, data in a temp dir), runs pytest
# against them, and always stops them afterwards. The exit code is pytest's, except that
# "no tests collected" (5) is a failure too. The SMTP/IMAP servers and the Celery worker are
# started by the pytest fixtures (tests/conftest.py).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1

say() { printf '[run.sh] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
    else die "need root to run: $*"
    fi
}

# --- 1. System packages (only the missing ones) ---------------------------------------------
pkgs=(postgresql redis-server dovecot-imapd chromium chromium-driver)
[ -x .venv/bin/python ] || pkgs+=(python3 python3-venv)
missing=()
for pkg in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -qq >/dev/null || die "apt-get update failed"
    as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || die "apt-get install ${missing[*]} failed"
fi

# --- 2. Python environment ---------------------------------------------------------------------
if [ ! -x .venv/bin/python ]; then
    say "creating .venv"
    python3 -m venv .venv || die "python3 -m venv failed"
fi
req_hash="$(sha256sum requirements.txt | cut -d' ' -f1)"
if [ "$(cat .venv/.requirements.sha256 2>/dev/null)" != "$req_hash" ]; then
    say "installing requirements.txt into .venv"
    .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt \
        || die "pip install -r requirements.txt failed"
    echo "$req_hash" > .venv/.requirements.sha256
fi
PY="$ROOT/.venv/bin/python"

# --- 3. Throwaway PostgreSQL and Redis -------------------------------------------------------
TMP="$(mktemp -d /tmp/outreach-tests.XXXXXX)" || die "mktemp failed"
chmod 711 "$TMP"   # the postgres user must reach its data and socket directories
PG_BIN=""
REDIS_PID=""
PG_STARTED=""

as_pg() {  # run a command as the owner of the cluster (postgres refuses to run as root)
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

SHOW_LOG_LINES=30   # lowered to 10 once the servers are up: then a failure is usually the tests'
show_logs() {
    for log in "$TMP"/postgres.log "$TMP"/initdb.log "$TMP"/redis.log; do
        [ -s "$log" ] || continue
        say "--- ${log##*/} (last $SHOW_LOG_LINES lines) ---"
        tail -n "$SHOW_LOG_LINES" "$log" >&2
    done
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$PG_STARTED" ]; then
        as_pg "$PG_BIN/pg_ctl" -D "$TMP/pgdata" -m immediate -w -t 20 stop >/dev/null 2>&1 || true
    fi
    if [ -n "$REDIS_PID" ]; then
        kill "$REDIS_PID" 2>/dev/null && wait "$REDIS_PID" 2>/dev/null
    fi
    if [ "$rc" -ne 0 ]; then show_logs; fi
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

for candidate in /usr/lib/postgresql/15/bin $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV); do
    if [ -x "$candidate/initdb" ]; then PG_BIN="$candidate"; break; fi
done
[ -n "$PG_BIN" ] || die "PostgreSQL server binaries not found under /usr/lib/postgresql"

PG_PORT="$(free_port)"
mkdir -p "$TMP/pgdata" "$TMP/pgsock"
if [ "$(id -u)" -eq 0 ]; then chown postgres: "$TMP/pgdata" "$TMP/pgsock"; fi
# Logs live in a file owned by the server user, inside $TMP.
touch "$TMP/postgres.log" "$TMP/initdb.log"
if [ "$(id -u)" -eq 0 ]; then chown postgres: "$TMP/postgres.log" "$TMP/initdb.log"; fi
as_pg "$PG_BIN/initdb" -D "$TMP/pgdata" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync \
    >"$TMP/initdb.log" 2>&1 || die "initdb failed"
as_pg "$PG_BIN/pg_ctl" -D "$TMP/pgdata" -l "$TMP/postgres.log" -w -t 30 start -o \
    "-p $PG_PORT -k $TMP/pgsock -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    >/dev/null 2>&1 || die "PostgreSQL did not start"
PG_STARTED=1
as_pg "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres outreach >>"$TMP/postgres.log" 2>&1 \
    || die "createdb failed"

REDIS_PORT="$(free_port)"
mkdir -p "$TMP/redis"
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no --databases 128 \
    --dir "$TMP/redis" --logfile "$TMP/redis.log" --daemonize no &
REDIS_PID=$!
for _ in $(seq 100); do
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break
    kill -0 "$REDIS_PID" 2>/dev/null || die "redis-server exited"
    sleep 0.1
done
redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG || die "redis-server did not answer"

say "PostgreSQL on 127.0.0.1:$PG_PORT, Redis on 127.0.0.1:$REDIS_PORT"
SHOW_LOG_LINES=10

# --- 4. Environment for Django, Celery and the fixtures ----------------------------------------
read -r KEY1 KEY2 < <("$PY" -c 'from cryptography.fernet import Fernet as F; print(F.generate_key().decode(), F.generate_key().decode())')
export DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/outreach"
export CELERY_BROKER_URL="redis://127.0.0.1:$REDIS_PORT/0"
export REDIS_URL="redis://127.0.0.1:$REDIS_PORT/1"
export DJANGO_SETTINGS_MODULE=outreach.settings.test
export SECRET_KEY="test-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export OUTREACH_ENCRYPTION_KEYS="$KEY1,$KEY2"
export OUTREACH_ALLOW_PRIVATE_MAIL_HOSTS=true
export OUTREACH_TEST_SERVERS=required
unset OUTREACH_SMTP_PORTS OUTREACH_IMAP_PORTS OUTREACH_MAIL_CA_FILE CELERY_FILESYSTEM_BROKER_DIR

# --- 5. Tests ------------------------------------------------------------------------------------
# Two test processes (pytest-xdist; the fixtures give each its own Redis databases and test database).
"$PY" -m pytest -n "${OUTREACH_TEST_PROCESSES:-2}" "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
    say "pytest collected no tests: failing"
    rc=1
fi
exit "$rc"
