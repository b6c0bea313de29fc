#!/usr/bin/env bash
# Run the facility simulator (dcr-sim) in the background against the local services.
#
#   simulator.sh start    start dcr-sim unless it is already running: by default it backfills
#                         today so far (3600x), then goes on in real time, until stopped; waits
#                         (15 s deadline) until it has started its run, else prints its log tail
#                         and exits 1
#   simulator.sh stop     SIGTERM (it delivers what is queued, up to 10 s, and logs a summary),
#                         SIGKILL after 30 s
#   simulator.sh status   print running/stopped
#
# Other dcr-sim arguments: DCR_SIM_ARGS="--facilities halmtorv,amager --seed 7" simulator.sh start
# (see .venv/bin/dcr-sim --help). Needs the services up (services.sh start), which also writes the
# development tokens to .state/auth/dev-tokens.yaml.
# Restarting it the same day re-sends today's backfill as idempotent replays (same run id), so
# nothing is counted twice. Log (a progress line every 10 s while catching up, every 60 s in real
# time; the summary when stopped): .state/logs/simulator.log  Pid: .state/run/simulator.pid
set -euo pipefail
LOG_PREFIX=simulator  # used by log()/die() in lib.sh
# shellcheck source=deploy/scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NAME=simulator
SIM="$ROOT/.venv/bin/dcr-sim"
START_TIMEOUT=15

start() {
    require_venv
    local pid
    if pid="$(pid_of "$NAME" "$SIM")"; then
        log "already running (pid $pid)"
        return 0
    fi
    local logfile="$LOGS/$NAME.log" offset=0
    [[ -f "$logfile" ]] && offset="$(stat -c %s "$logfile")"
    # shellcheck disable=SC2086  # DCR_SIM_ARGS is split into words on purpose
    (cd "$ROOT" && spawn "$NAME" "$SIM" ${DCR_SIM_ARGS:-})
    started() { tail -c "+$((offset + 1))" "$logfile" | grep -q "dcr-sim: INFO run "; }
    local deadline=$((SECONDS + START_TIMEOUT))
    until started; do
        if ! pid_of "$NAME" "$SIM" >/dev/null || ((SECONDS >= deadline)); then
            log "dcr-sim did not start; last lines of $logfile:"
            tail -n 20 "$logfile" >&2
            stop_pid "$NAME" "$SIM" 5 >/dev/null
            exit 1
        fi
        sleep 0.25
    done
    log "running (pid $(pid_of "$NAME" "$SIM")); progress and summary in $logfile"
}

stop() { stop_pid "$NAME" "$SIM" 30; }

status() {
    local pid
    if pid="$(pid_of "$NAME" "$SIM")"; then
        echo "$NAME: running (pid $pid)"
    else
        echo "$NAME: stopped"
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 {start|stop|status}" >&2; exit 2 ;;
esac
