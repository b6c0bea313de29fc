#!/usr/bin/env bash
# Local Prometheus on 127.0.0.1:9090 scraping the services of deploy/services.txt (Debian's prometheus package,
# which also provides promtool for the rule tests).
#
#   prometheus.sh install   apt-get install prometheus if missing; generate
#                           deploy/prometheus/prometheus.yml if the checkout has none
#   prometheus.sh start     install, start in the background, wait for /-/ready
#   prometheus.sh stop      SIGTERM our process (pid file), SIGKILL after 30 s
#   prometheus.sh status    print running/stopped
#
# Data: .state/prometheus  Log: .state/logs/prometheus.log  Pid: .state/run/prometheus.pid
set -euo pipefail
LOG_PREFIX=prometheus  # used by log()/die() in lib.sh
# shellcheck source=deploy/scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BIN=/usr/bin/prometheus
CONFIG="$ROOT/deploy/prometheus/prometheus.yml"
DATA="$STATE/prometheus"
ADDR=127.0.0.1:9090

# The committed configuration is generated from the service table (deploy/services.txt); a
# checkout without one gets it regenerated.
write_default_config() {
    log "generating $CONFIG from deploy/services.txt"
    require_venv
    (cd "$ROOT" && "$VENV_PY" deploy/prometheus/generate.py)
}

install() {
    apt_ensure prometheus curl
    [[ -f "$CONFIG" ]] || write_default_config
}

# The scrape jobs read the scraper's token from .state/auth/prometheus.token (promtool checks
# that it exists), so the development tokens are written before the config is checked.

ready() { http_ok "http://$ADDR/-/ready"; }

spawn_prometheus() {
    dev_tokens
    promtool check config "$CONFIG" >/dev/null || die "invalid $CONFIG (run: promtool check config $CONFIG)"
    mkdir -p "$DATA"
    spawn prometheus "$BIN" --config.file="$CONFIG" --storage.tsdb.path="$DATA" \
        --web.listen-address="$ADDR" --web.enable-lifecycle
}

start() {
    install
    DAEMON_FOREIGN_OK=1 daemon_start prometheus "$BIN" 9090 ready spawn_prometheus
}

stop() { stop_pid prometheus "$BIN" 30; }

status() { daemon_status prometheus "$BIN"; }

dispatch "install start stop status" "$@"
