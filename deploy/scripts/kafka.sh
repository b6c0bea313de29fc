#!/usr/bin/env bash
# Local single-node Kafka (KRaft, broker+controller) on 127.0.0.1:9092 — no Docker, no systemd.
#
#   kafka.sh install   fetch the broker jars into .deps/kafka with Maven (deploy/kafka/pom.xml),
#                      only when they are missing (works offline from ~/.m2 afterwards)
#   kafka.sh start     install if needed, format storage once (cluster id persisted in
#                      .state/kafka/cluster.id), start the broker in the background, wait until
#                      a metadata request succeeds and create the dcr.* topics
#   kafka.sh stop      SIGTERM our broker (pid file), SIGKILL after 30 s
#   kafka.sh status    print running/stopped
#
# Data: .state/kafka/data  Log: .state/logs/kafka.log  Pid: .state/run/kafka.pid
set -euo pipefail
LOG_PREFIX=kafka  # used by log()/die() in lib.sh
# shellcheck source=deploy/scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

POM="$ROOT/deploy/kafka/pom.xml"
DEPS="$ROOT/.deps/kafka"
KSTATE="$STATE/kafka"
DATA="$KSTATE/data"
PROPS="$KSTATE/server.properties"
CLUSTER_ID_FILE="$KSTATE/cluster.id"
LOG4J="$ROOT/deploy/kafka/log4j2.yaml"
MAIN_CLASS="kafka.Kafka"
JAVA_OPTS=(-Xmx1g -Xms256m -XX:+UseG1GC -Djava.awt.headless=true
           "-Dlog4j2.configurationFile=$LOG4J" "-Dkafka.logs.dir=$LOGS")

kafka_version() { sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM"; }

install() {
    # kcat: the external Kafka client the hostile-input tests write poison records with.
    command -v kcat >/dev/null || apt_ensure kcat
    local version; version="$(kafka_version)"
    if [[ -f "$DEPS/kafka_2.13-$version.jar" && -f "$DEPS/.pom.sha256" ]] \
        && [[ "$(cat "$DEPS/.pom.sha256")" == "$(sha256sum "$POM" | cut -d' ' -f1)" ]]; then
        return 0
    fi
    command -v java >/dev/null || apt_ensure openjdk-17-jre-headless
    command -v mvn >/dev/null || apt_ensure maven
    log "fetching Kafka $version jars into $DEPS"
    rm -rf "$DEPS"
    mkdir -p "$DEPS"
    if ! mvn -B -q -Dstyle.color=never -f "$POM" dependency:copy-dependencies \
            -DoutputDirectory="$DEPS" -DincludeScope=runtime >"$LOGS/kafka-install.log" 2>&1; then
        tail -n 40 "$LOGS/kafka-install.log" >&2
        die "mvn dependency:copy-dependencies failed (full output: $LOGS/kafka-install.log)"
    fi
    sha256sum "$POM" | cut -d' ' -f1 >"$DEPS/.pom.sha256"
    log "installed $(find "$DEPS" -name '*.jar' | wc -l) jars"
}

render_config() {
    mkdir -p "$DATA"
    sed "s|@DATA_DIR@|$DATA|g" "$ROOT/deploy/kafka/server.properties" >"$PROPS"
}

format_storage() {
    # Storage formatted for another controller endpoint (the controller moved from 9093 to 19093 to
    # leave 9093 to Alertmanager) cannot form its quorum: keep the old data aside and reformat.
    local endpoint; endpoint="$(sed -n 's/^controller.quorum.bootstrap.servers=//p' "$PROPS")"
    if [[ -f "$DATA/meta.properties" && "$(cat "$KSTATE/controller.endpoint" 2>/dev/null || echo 127.0.0.1:9093)" != "$endpoint" ]]; then
        local aside; aside="$KSTATE/data.before-$(date +%Y%m%dT%H%M%S)"
        log "storage was formatted for another controller endpoint: moving it to $aside and reformatting"
        mv "$DATA" "$aside"
        mkdir -p "$DATA"
    fi
    echo "$endpoint" >"$KSTATE/controller.endpoint"
    [[ -f "$DATA/meta.properties" ]] && return 0
    if [[ ! -s "$CLUSTER_ID_FILE" ]]; then
        java -cp "$DEPS/*" "-Dlog4j2.configurationFile=$LOG4J" kafka.tools.StorageTool random-uuid \
            2>/dev/null | tail -n1 >"$CLUSTER_ID_FILE"
    fi
    log "formatting storage (cluster id $(cat "$CLUSTER_ID_FILE"))"
    java -cp "$DEPS/*" "-Dlog4j2.configurationFile=$LOG4J" kafka.tools.StorageTool format \
        -t "$(cat "$CLUSTER_ID_FILE")" -c "$PROPS" --standalone --ignore-formatted \
        >>"$LOGS/kafka.log" 2>&1 || die "storage format failed, see $LOGS/kafka.log"
}

running_pid() { pid_of kafka "$MAIN_CLASS"; }

ensure_topics() {
    require_venv
    # Wait for the listener first (quietly); then the admin client checks real readiness
    # (metadata request) and creates the topics.
    wait_until 90 "port 9092" port_open 127.0.0.1 9092 || return 1
    "$VENV_PY" -m shared.kafka.admin ensure --timeout 90
}

start() {
    local pid
    if pid="$(running_pid)" && port_open 127.0.0.1 9092; then
        log "already running (pid $pid)"
        return 0
    fi
    if [[ -n "${pid:-}" ]]; then
        # Our process exists but does not answer yet (e.g. still starting): just wait for it.
        log "pid $pid exists, waiting for it to answer"
    else
        if port_open 127.0.0.1 9092; then
            # E.g. the broker of another checkout: use it (topics are the same), never stop it.
            log "port 9092 is served by a process this checkout did not start; using it"
            ensure_topics || die "whatever listens on 127.0.0.1:9092 is not a usable Kafka broker"
            return 0
        fi
        install
        render_config
        format_storage
        log "starting broker ($(kafka_version)), log: $LOGS/kafka.log"
        spawn kafka java "${JAVA_OPTS[@]}" -cp "$DEPS/*" "$MAIN_CLASS" "$PROPS"
        pid="$(cat "$RUN/kafka.pid")"
    fi
    if ! ensure_topics; then
        kill -0 "$pid" 2>/dev/null || log "broker process exited"
        tail -n 40 "$LOGS/kafka.log" >&2
        exit 1
    fi
    log "ready on 127.0.0.1:9092 (pid $pid)"
}

stop() { stop_pid kafka "$MAIN_CLASS" 30; }

status() {
    local pid
    if pid="$(running_pid)"; then echo "kafka: running (pid $pid)"; else echo "kafka: stopped"; fi
}

case "${1:-}" in
    install) install ;;
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 {install|start|stop|status}" >&2; exit 2 ;;
esac
