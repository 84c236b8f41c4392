#!/usr/bin/env bash
# A throw-away PostgreSQL server on the loopback interface, for the tests of shared Optuna
# storage (tests/test_postgres.py) and for trying multi-worker tuning by hand.
#
#   scripts/postgres_server.sh install      install the server (apt-get) if it is missing
#                                           exit 3: missing and cannot be installed (not root)
#   scripts/postgres_server.sh start PORT   initdb in a new temporary folder and start a server on
#                                           127.0.0.1:PORT with a database "deepstock"; prints
#                                           PGDATA_DIR=<folder> and DATABASE_URL=<url>
#   scripts/postgres_server.sh stop DIR     stop the server of DIR and delete DIR
#
# The server trusts local connections (no password): it listens on 127.0.0.1 only and lives
# only as long as the test. Run as root, the server runs as the "postgres" system user (initdb
# refuses root); otherwise as the current user.
set -euo pipefail

find_bin() {
    # pg_ctl on PATH, else the newest /usr/lib/postgresql/<version>/bin
    local dir
    if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
        dirname "$(readlink -f "$(command -v pg_ctl)")"
        return 0
    fi
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$dir/pg_ctl" ] && [ -x "$dir/initdb" ]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

as_server_user() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

command_install() {
    if find_bin >/dev/null; then
        echo "postgresql is installed: $(find_bin)"
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        echo "postgresql is not installed and installing it needs root" >&2
        exit 3
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "postgresql is not installed and there is no apt-get to install it" >&2
        exit 3
    fi
    echo "installing postgresql with apt-get..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q postgresql >/dev/null 2>&1 || {
        apt-get update -q >/dev/null
        apt-get install -y -q postgresql >/dev/null
    }
    find_bin >/dev/null || { echo "postgresql install failed" >&2; exit 1; }
    echo "postgresql is installed: $(find_bin)"
}

command_start() {
    local port="${1:?usage: postgres_server.sh start PORT}"
    local bin dir
    bin="$(find_bin)" || { echo "postgresql is not installed; run: $0 install" >&2; exit 3; }
    dir="$(mktemp -d "${TMPDIR:-/tmp}/deepstock-pg.XXXXXX")"
    chmod 755 "$dir"
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || { echo "no 'postgres' system user" >&2; exit 1; }
        chown postgres "$dir"
    fi
    as_server_user "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-sync \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    # Loopback only, the socket inside the folder, no fsync: a disposable test server.
    as_server_user "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=200" \
        >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres deepstock
    echo "PGDATA_DIR=$dir"
    echo "DATABASE_URL=postgresql://postgres@127.0.0.1:$port/deepstock"
}

command_stop() {
    local dir="${1:?usage: postgres_server.sh stop DIR}"
    local bin
    case "$dir" in
        */deepstock-pg.*) ;;
        *) echo "refusing to stop/delete $dir: not a folder made by '$0 start'" >&2; exit 2 ;;
    esac
    bin="$(find_bin)"
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_server_user "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null || true
    fi
    rm -rf "$dir"
}

case "${1:-}" in
    install) command_install ;;
    start) shift; command_start "$@" ;;
    stop) shift; command_stop "$@" ;;
    *) echo "usage: $0 install | start PORT | stop DIR" >&2; exit 2 ;;
esac
