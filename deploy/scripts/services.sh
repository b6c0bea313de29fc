#!/usr/bin/env bash
# Run the Python services locally (the four platform services, the public API, a second app of
# the projection, and the front desk) with uvicorn, in the background. Which services, their
# apps and ports: deploy/services.txt (the one service table).
#
#   services.sh start    start each service that is not already running, then wait (60 s
#                        deadline, polling) until every /healthz answers 200; on timeout print
#                        the tail of that service's log and exit 1
#   services.sh stop     SIGTERM our processes (pid files), SIGKILL after 30 s
#   services.sh stop-one NAME   stop one service (e.g. the projection before a rebuild)
#   services.sh status   print running/stopped per service
#   services.sh env      print the DCR_ENV / DCR_PSEUDONYM_* lines the services are started with
#                        (shell syntax; tests/integration/ingest/test_pseudonym_keys.py uses it)
#
# Pseudonym key (issue 13): the services run with an explicit DCR_ENV=dev and a RANDOM secret
# generated once per checkout into .state/secrets/pseudonym_secret (mode 600), never the public
# development secret in shared/settings.py. A DCR_PSEUDONYM_SECRET already in the environment
# (with its DCR_PSEUDONYM_KEY_ID) is used instead.
#
# Needs PostgreSQL and Kafka up (postgres.sh start, kafka.sh start). On the secured cluster
# (KAFKA_NODES=3) each service connects as its own Kafka identity (kafka_identity_env below).
# Logs: .state/logs/<service>.log  Pids: .state/run/<service>.pid
set -euo pipefail
LOG_PREFIX=services  # used by log()/die() in lib.sh
# shellcheck source=deploy/scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# "name module:factory port" per service, in start order, from the one service table.
SERVICE_TABLE="$ROOT/deploy/services.txt"
SERVICES=()
while read -r name app port _; do
    [[ -z "$name" || "$name" == \#* ]] && continue
    SERVICES+=("$name $app $port")
done <"$SERVICE_TABLE"
((${#SERVICES[@]})) || die "no services in $SERVICE_TABLE"
HEALTH_TIMEOUT=60

healthy() { http_ok "http://127.0.0.1:$1/healthz"; }

# The pseudonym secret of this checkout's development platform (see the header).
local_pseudonym_secret() {
    local file="$STATE/secrets/pseudonym_secret"
    if [[ ! -s "$file" ]]; then
        (umask 077 && mkdir -p "$STATE/secrets" \
            && "$VENV_PY" -c 'import secrets; print(secrets.token_hex(32))' >"$file.tmp" \
            && mv "$file.tmp" "$file")
    fi
    cat "$file"
}

# Exports the pseudonym settings of the services (explicit dev mode, never a default).
export_pseudonym_env() {
    export DCR_ENV=dev
    if [[ -z "${DCR_PSEUDONYM_SECRET:-}" ]]; then
        DCR_PSEUDONYM_SECRET="$(local_pseudonym_secret)"
        export DCR_PSEUDONYM_SECRET
    fi
    export DCR_PSEUDONYM_KEY_ID="${DCR_PSEUDONYM_KEY_ID:-k1}"
}

# The Kafka identity of a service on a secured cluster (DCR_KAFKA_SECURITY_PROTOCOL other than
# PLAINTEXT, e.g. make up KAFKA_NODES=3): VAR=value words for env(1), none on the plaintext node.
# The public API and the front desk have no Kafka client, hence no identity.
kafka_identity_env() {
    [[ "${DCR_KAFKA_SECURITY_PROTOCOL:-PLAINTEXT}" == PLAINTEXT ]] && return 0
    case "$1" in intake | supply | incident | projection) ;; *) return 0 ;; esac
    echo "DCR_KAFKA_USERNAME=$1 DCR_KAFKA_PASSWORD_FILE=$STATE/auth/kafka/$1.password"
}

start() {
    require_venv
    command -v curl >/dev/null || apt_ensure curl
    local entry name app port pid
    export_pseudonym_env
    dev_tokens  # lib.sh: .state/auth/{tokens,dev-tokens}.yaml, prometheus.token
    # Front-desk staff accounts (scrypt hashes; clear development passwords in dev-staff.yaml).
    (cd "$ROOT" && "$VENV_PY" -m services.frontdesk.staff generate \
        --out "$STATE/auth/staff.yaml" --clear-out "$STATE/auth/dev-staff.yaml" >/dev/null)
    for entry in "${SERVICES[@]}"; do
        read -r name app port <<<"$entry"
        if pid="$(pid_of "$name" "$app")"; then
            log "$name already running (pid $pid)"
            continue
        fi
        port_open 127.0.0.1 "$port" && die "port $port ($name) is taken by a process we did not start"
        log "starting $name on 127.0.0.1:$port"
        (cd "$ROOT" && spawn "$name" env $(kafka_identity_env "$name") "$VENV_PY" -m uvicorn "$app" \
            --factory --host 127.0.0.1 --port "$port")
    done
    local deadline=$((SECONDS + HEALTH_TIMEOUT)) failed=0
    for entry in "${SERVICES[@]}"; do
        read -r name app port <<<"$entry"
        until healthy "$port"; do
            if ! pid_of "$name" "$app" >/dev/null; then
                log "$name exited during startup; last lines of $LOGS/$name.log:"
                tail -n 40 "$LOGS/$name.log" >&2
                failed=1
                break
            fi
            if ((SECONDS >= deadline)); then
                log "$name not healthy after ${HEALTH_TIMEOUT}s; last lines of $LOGS/$name.log:"
                tail -n 40 "$LOGS/$name.log" >&2
                failed=1
                break
            fi
            sleep 0.25
        done
        ((failed)) && exit 1
        log "$name healthy: http://127.0.0.1:$port"
    done
}

stop() {
    local i entry name app port
    # Reverse order: the front desk, then the projection (consumer side) go first.
    for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do
        read -r name app port <<<"${SERVICES[$i]}"
        stop_pid "$name" "$app" 30
    done
}

status() {
    local entry name app port pid
    for entry in "${SERVICES[@]}"; do
        read -r name app port <<<"$entry"
        if pid="$(pid_of "$name" "$app")"; then
            if healthy "$port"; then echo "$name: running (pid $pid, healthy, :$port)"
            else echo "$name: running (pid $pid, NOT healthy, :$port)"; fi
        else
            echo "$name: stopped"
        fi
    done
}

stop_one() {
    local entry name app port
    for entry in "${SERVICES[@]}"; do
        read -r name app port <<<"$entry"
        [[ "$name" == "$1" ]] && { stop_pid "$name" "$app" 30; return 0; }
    done
    die "unknown service $1"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    stop-one) stop_one "${2:?usage: $0 stop-one NAME}" ;;
    status) status ;;
    env)
        require_venv
        export_pseudonym_env
        printf 'DCR_ENV=%q\nDCR_PSEUDONYM_SECRET=%q\nDCR_PSEUDONYM_KEY_ID=%q\n' \
            "$DCR_ENV" "$DCR_PSEUDONYM_SECRET" "$DCR_PSEUDONYM_KEY_ID"
        ;;
    *) echo "usage: $0 {start|stop|stop-one NAME|status|env}" >&2; exit 2 ;;
esac
