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

sink_ready() { port_open 127.0.0.1 "$SINK_PORT"; }

spawn_sink() {
    require_venv
    mkdir -p "$MAIL"
    (cd "$ROOT" && spawn mailsink "$VENV_PY" -m services.mailsink --dir "$MAIL" --port "$SINK_PORT")
}

ready() { http_ok "http://$ADDR/-/ready"; }

spawn_alertmanager() {
    mkdir -p "$DATA"
    # --cluster.listen-address= : a single instance, no gossip port
    spawn alertmanager "$BIN" --config.file="$CONFIG" --storage.path="$DATA" \
        --web.listen-address="$ADDR" --cluster.listen-address=
}

start() {
    check
    daemon_start mailsink services.mailsink "$SINK_PORT" sink_ready spawn_sink 30
    log "mail sink on 127.0.0.1:$SINK_PORT, messages in $MAIL"
    daemon_start alertmanager "$BIN" 9093 ready spawn_alertmanager
}

stop() {
    stop_pid alertmanager "$BIN" 30
    stop_pid mailsink services.mailsink 30
}

status() {
    daemon_status alertmanager "$BIN"
    daemon_status mailsink services.mailsink .state/mail
}

dispatch "install check start stop status" "$@"
