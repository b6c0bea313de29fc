#!/usr/bin/env bash
# Local Alertmanager on 127.0.0.1:9093 (Debian's prometheus-alertmanager, which also provides
# amtool) and the development mail sink on 127.0.0.1:1025 that it (and the notifier) send to:
# every message is stored as a file under .state/mail/.
#
#   alertmanager.sh install   apt-get install prometheus-alertmanager if missing
#   alertmanager.sh check     amtool check-config on the generated configs (make test)
#   alertmanager.sh start     install, start the mail sink and Alertmanager, wait until ready
#   alertmanager.sh stop      SIGTERM both (pid files), SIGKILL after 30 s
#   alertmanager.sh status    print running/stopped
#
# Config: deploy/alertmanager/alertmanager.yml (generated from deploy/contacts.yaml by
# deploy/alertmanager/generate.py). Data: .state/alertmanager  Mail: .state/mail
# Logs: .state/logs/{alertmanager,mailsink}.log  Pids: .state/run/{alertmanager,mailsink}.pid
set -euo pipefail
LOG_PREFIX=alertmanager  # used by log()/die() in lib.sh
# shellcheck source=deploy/scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BIN=/usr/bin/prometheus-alertmanager
CONFIG_DIR="$ROOT/deploy/alertmanager"
CONFIG="$CONFIG_DIR/alertmanager.yml"
DATA="$STATE/alertmanager"
MAIL="$STATE/mail"
ADDR=127.0.0.1:9093
SINK_PORT=1025

install() { apt_ensure prometheus-alertmanager curl; }

check() {
    install
    amtool check-config "$CONFIG" "$CONFIG_DIR/alertmanager.compose.yml" >/dev/null \
        || die "invalid Alertmanager config (run: amtool check-config $CONFIG)"
    log "amtool check-config: OK"
}

start_sink() {
    local pid
    if pid="$(pid_of mailsink services.mailsink)"; then log "mail sink already running (pid $pid)"; return 0; fi
    port_open 127.0.0.1 "$SINK_PORT" && die "port $SINK_PORT is taken by a process we did not start"
    require_venv
    mkdir -p "$MAIL"
    (cd "$ROOT" && spawn mailsink "$VENV_PY" -m services.mailsink --dir "$MAIL" --port "$SINK_PORT")
    wait_until 30 "the mail sink on :$SINK_PORT" port_open 127.0.0.1 "$SINK_PORT" \
        || { tail -n 20 "$LOGS/mailsink.log" >&2; exit 1; }
    log "mail sink on 127.0.0.1:$SINK_PORT, messages in $MAIL"
}

start() {
    local pid
    check
    start_sink
    if pid="$(pid_of alertmanager "$BIN")" && http_ok "http://$ADDR/-/ready"; then
        log "already running (pid $pid)"
        return 0
    fi
    if [[ -z "${pid:-}" ]]; then
        port_open 127.0.0.1 9093 && die "port 9093 is taken by a process we did not start"
        mkdir -p "$DATA"
        log "starting, log: $LOGS/alertmanager.log"
        # --cluster.listen-address= : a single instance, no gossip port
        spawn alertmanager "$BIN" --config.file="$CONFIG" --storage.path="$DATA" \
            --web.listen-address="$ADDR" --cluster.listen-address=
        pid="$(cat "$RUN/alertmanager.pid")"
    fi
    if ! wait_until 60 "http://$ADDR/-/ready" http_ok "http://$ADDR/-/ready"; then
        tail -n 30 "$LOGS/alertmanager.log" >&2
        exit 1
    fi
    log "ready on http://$ADDR (pid $pid)"
}

stop() {
    stop_pid alertmanager "$BIN" 30
    stop_pid mailsink services.mailsink 30
}

status() {
    local pid
    if pid="$(pid_of alertmanager "$BIN")"; then echo "alertmanager: running (pid $pid)"; else echo "alertmanager: stopped"; fi
    if pid="$(pid_of mailsink services.mailsink)"; then echo "mailsink: running (pid $pid, .state/mail)"; else echo "mailsink: stopped"; fi
}

case "${1:-}" in
    install) install ;;
    check) check ;;
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 {install|check|start|stop|status}" >&2; exit 2 ;;
esac
