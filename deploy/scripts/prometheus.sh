#!/usr/bin/env bash
# Local Prometheus on 127.0.0.1:9090 scraping the four services (Debian's prometheus package,
# which also provides promtool for the rule tests).
#
#   prometheus.sh install   apt-get install prometheus if missing; write a minimal
#                           deploy/prometheus/prometheus.yml if the repo has none yet
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

write_default_config() {
    log "writing a minimal $CONFIG"
    mkdir -p "$(dirname "$CONFIG")/rules"
    cat >"$CONFIG" <<'YAML'
# Prometheus configuration for the local stack (make up). Rule files live in rules/ next to this
# file and are checked by promtool in the tests.
global:
  scrape_interval: 5s
  evaluation_interval: 5s

rule_files:
  - rules/*.yml

alerting:
  alertmanagers:
    - static_configs:
        - targets: ["127.0.0.1:9093"]

scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["127.0.0.1:9090"]
  - job_name: intake
    metrics_path: /metrics
    authorization:
      type: Bearer
      credentials_file: ../../.state/auth/prometheus.token
    static_configs:
      - targets: ["127.0.0.1:8001"]
  - job_name: supply
    metrics_path: /metrics
    authorization:
      type: Bearer
      credentials_file: ../../.state/auth/prometheus.token
    static_configs:
      - targets: ["127.0.0.1:8002"]
  - job_name: incident
    metrics_path: /metrics
    authorization:
      type: Bearer
      credentials_file: ../../.state/auth/prometheus.token
    static_configs:
      - targets: ["127.0.0.1:8003"]
  - job_name: projection
    metrics_path: /metrics
    authorization:
      type: Bearer
      credentials_file: ../../.state/auth/prometheus.token
    static_configs:
      - targets: ["127.0.0.1:8004"]
YAML
}

install() {
    apt_ensure prometheus curl
    [[ -f "$CONFIG" ]] || write_default_config
}

# The scrape jobs read the scraper's token from .state/auth/prometheus.token (promtool checks
# that it exists), so the development tokens are written before the config is checked.

running_pid() { pid_of prometheus "$BIN"; }

start() {
    local pid
    install
    if pid="$(running_pid)" && http_ok "http://$ADDR/-/ready"; then
        log "already running (pid $pid)"
        return 0
    fi
    if [[ -z "${pid:-}" ]]; then
        if port_open 127.0.0.1 9090; then
            http_ok "http://$ADDR/-/ready" || die "port 9090 is taken by a process we did not start"
            log "a Prometheus this checkout did not start is serving $ADDR; using it"
            return 0
        fi
        dev_tokens
        promtool check config "$CONFIG" >/dev/null || die "invalid $CONFIG (run: promtool check config $CONFIG)"
        mkdir -p "$DATA"
        log "starting, log: $LOGS/prometheus.log"
        spawn prometheus "$BIN" --config.file="$CONFIG" --storage.tsdb.path="$DATA" \
            --web.listen-address="$ADDR" --web.enable-lifecycle
        pid="$(cat "$RUN/prometheus.pid")"
    fi
    if ! wait_until 60 "http://$ADDR/-/ready" http_ok "http://$ADDR/-/ready"; then
        tail -n 30 "$LOGS/prometheus.log" >&2
        exit 1
    fi
    log "ready on http://$ADDR (pid $pid)"
}

stop() { stop_pid prometheus "$BIN" 30; }

status() {
    local pid
    if pid="$(running_pid)"; then echo "prometheus: running (pid $pid)"; else echo "prometheus: stopped"; fi
}

case "${1:-}" in
    install) install ;;
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 {install|start|stop|status}" >&2; exit 2 ;;
esac
