#!/usr/bin/env bash
# Local PostgreSQL 15 for development and CI, using Debian's packaged cluster "15 main"
# on 127.0.0.1:5432 (no Docker, no systemd).
#
#   postgres.sh install   apt-get install postgresql if missing; create cluster 15/main if missing;
#                         install deploy/postgres/dcr.conf as the cluster's conf.d/dcr.conf (the
#                         platform's settings; a running cluster takes them at its next restart)
#   postgres.sh start     install, start the cluster if it is down (and remember that we started
#                         it), wait for pg_isready, create roles dcr (LOGIN CREATEDB, password dcr)
#                         and dcr_reader (read-only, for Grafana) and database dcr, then apply
#                         migrations (python -m shared.db.migrate)
#   postgres.sh stop      stop the cluster only if this script started it
#   postgres.sh status    print running/stopped
#
# Marker: .state/run/postgres.started-by-us   Server log: /var/log/postgresql/postgresql-15-main.log
set -euo pipefail
LOG_PREFIX=postgres  # used by log()/die() in lib.sh
# shellcheck source=deploy/scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PG_VERSION=15
PG_CLUSTER=main
PG_PORT=5432
MARKER="$RUN/postgres.started-by-us"

as_postgres() { runuser -u postgres -- "$@"; }
psql_admin() { as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" "$@"; }

install() {
    apt_ensure "postgresql-$PG_VERSION" postgresql-client-$PG_VERSION
    if ! pg_lsclusters -h | awk '{print $1"/"$2}' | grep -qx "$PG_VERSION/$PG_CLUSTER"; then
        log "creating cluster $PG_VERSION/$PG_CLUSTER"
        pg_createcluster "$PG_VERSION" "$PG_CLUSTER" --port "$PG_PORT" >/dev/null
    fi
    install_settings
    local port
    port="$(pg_lsclusters -h | awk -v v="$PG_VERSION" -v c="$PG_CLUSTER" '$1==v && $2==c {print $3}')"
    [[ "$port" == "$PG_PORT" ]] || die "cluster $PG_VERSION/$PG_CLUSTER uses port $port, expected $PG_PORT"
}

# The platform's settings (deploy/postgres/dcr.conf) in the cluster's conf.d (Debian's
# postgresql.conf includes that directory).
install_settings() {
    local target="/etc/postgresql/$PG_VERSION/$PG_CLUSTER/conf.d/dcr.conf"
    if ! cmp -s "$ROOT/deploy/postgres/dcr.conf" "$target"; then
        command install -D -o postgres -g postgres -m 0644 "$ROOT/deploy/postgres/dcr.conf" "$target"
        if is_running; then
            log "settings changed ($target): they apply when the cluster restarts" \
                "(pg_ctlcluster $PG_VERSION $PG_CLUSTER restart)"
        fi
    fi
}

is_running() { pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" status >/dev/null 2>&1; }

ready() { pg_isready -q -h 127.0.0.1 -p "$PG_PORT"; }

provision() {
    psql_admin -d postgres <<'SQL'
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'dcr') THEN
        CREATE ROLE dcr LOGIN CREATEDB PASSWORD 'dcr';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'dcr_reader') THEN
        CREATE ROLE dcr_reader LOGIN PASSWORD 'dcr_reader';
    END IF;
END
$$;
SQL
    if [[ -z "$(psql_admin -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'dcr'")" ]]; then
        log "creating database dcr"
        as_postgres createdb -p "$PG_PORT" -O dcr dcr
    fi
    psql_admin -d dcr -c "GRANT CONNECT ON DATABASE dcr TO dcr_reader"
}

start() {
    install
    if is_running; then
        log "cluster $PG_VERSION/$PG_CLUSTER already running"
    else
        log "starting cluster $PG_VERSION/$PG_CLUSTER"
        command install -d -o postgres -g postgres -m 2775 /var/run/postgresql
        pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" start
        touch "$MARKER"
    fi
    wait_until 60 "pg_isready on 127.0.0.1:$PG_PORT" ready \
        || { tail -n 30 "/var/log/postgresql/postgresql-$PG_VERSION-$PG_CLUSTER.log" >&2; exit 1; }
    provision
    require_venv
    "$VENV_PY" -m shared.db.migrate
    log "ready: postgresql://dcr:dcr@127.0.0.1:$PG_PORT/dcr"
}

stop() {
    if [[ ! -f "$MARKER" ]]; then
        log "not started by us, leaving it alone"
        return 0
    fi
    if is_running; then
        log "stopping cluster $PG_VERSION/$PG_CLUSTER"
        pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" stop -m fast
    fi
    rm -f "$MARKER"
    log "stopped"
}

status() {
    if is_running && ready; then echo "postgres: running"; else echo "postgres: stopped"; fi
}

dispatch "install start stop status" "$@"
