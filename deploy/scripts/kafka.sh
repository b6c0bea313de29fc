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
#
# KAFKA_NODES=3 (make up KAFKA_NODES=3): a 3-node KRaft cluster instead, every node broker +
# controller (deploy/kafka/cluster.properties), on brokers 127.0.0.1:9092,9192,9292 and
# controllers 19093,19193,19293 (KAFKA_CLUSTER_PORTS / KAFKA_CLUSTER_CONTROLLER_PORTS override),
# heap -Xmx768m -Xms256m each (3 x 768 MiB of 24 GiB; G1). Topics with replication factor 3 and
# min.insync.replicas=2. Data: .state/kafka-cluster/nodeN/data  Log/pid: kafka-N.
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

KAFKA_NODES="${KAFKA_NODES:-1}"
[[ "$KAFKA_NODES" == 1 || "$KAFKA_NODES" == 3 ]] || die "KAFKA_NODES must be 1 or 3, not $KAFKA_NODES"
read -r -a CLUSTER_PORTS <<<"${KAFKA_CLUSTER_PORTS:-9092 9192 9292}"
read -r -a CLUSTER_CONTROLLER_PORTS <<<"${KAFKA_CLUSTER_CONTROLLER_PORTS:-19093 19193 19293}"
CSTATE="$STATE/kafka-cluster"
CLUSTER_JAVA_OPTS=(-Xmx768m -Xms256m -XX:+UseG1GC -Djava.awt.headless=true
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

status() { daemon_status kafka "$MAIN_CLASS"; }

# --- the 3-node cluster (KAFKA_NODES=3) ---------------------------------------------------------

cluster_bootstrap() {
    local port out=()
    for port in "${CLUSTER_PORTS[@]}"; do out+=("127.0.0.1:$port"); done
    (IFS=,; echo "${out[*]}")
}

cluster_render() {
    local voters=() i
    for i in 1 2 3; do voters+=("$i@127.0.0.1:${CLUSTER_CONTROLLER_PORTS[i-1]}"); done
    for i in 1 2 3; do
        mkdir -p "$CSTATE/node$i/data"
        sed -e "s|@NODE_ID@|$i|g" -e "s|@PORT@|${CLUSTER_PORTS[i-1]}|g" \
            -e "s|@CONTROLLER_PORT@|${CLUSTER_CONTROLLER_PORTS[i-1]}|g" \
            -e "s|@VOTERS@|$(IFS=,; echo "${voters[*]}")|g" -e "s|@DATA_DIR@|$CSTATE/node$i/data|g" \
            "$ROOT/deploy/kafka/cluster.properties" >"$CSTATE/node$i/server.properties"
    done
}

cluster_format() {
    # One cluster id for the three nodes (static quorum: no --standalone).
    [[ -s "$CSTATE/cluster.id" ]] || java -cp "$DEPS/*" "-Dlog4j2.configurationFile=$LOG4J" \
        kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1 >"$CSTATE/cluster.id"
    local i
    for i in 1 2 3; do
        [[ -f "$CSTATE/node$i/data/meta.properties" ]] && continue
        log "formatting node $i (cluster id $(cat "$CSTATE/cluster.id"))"
        java -cp "$DEPS/*" "-Dlog4j2.configurationFile=$LOG4J" kafka.tools.StorageTool format \
            -t "$(cat "$CSTATE/cluster.id")" -c "$CSTATE/node$i/server.properties" --ignore-formatted \
            >>"$LOGS/kafka-$i.log" 2>&1 || die "storage format of node $i failed, see $LOGS/kafka-$i.log"
    done
}

cluster_start() {
    local i pid
    if running_pid >/dev/null; then
        die "the single-node broker of this checkout runs: make down first, then KAFKA_NODES=3"
    fi
    install
    mkdir -p "$CSTATE"
    cluster_render
    cluster_format
    for i in 1 2 3; do
        if pid="$(pid_of "kafka-$i" "$MAIN_CLASS")"; then
            log "node $i already running (pid $pid)"
        elif port_open 127.0.0.1 "${CLUSTER_PORTS[i-1]}"; then
            die "port ${CLUSTER_PORTS[i-1]} is served by a process this checkout did not start"
        else
            log "starting node $i ($(kafka_version)) on 127.0.0.1:${CLUSTER_PORTS[i-1]}, log: $LOGS/kafka-$i.log"
            spawn "kafka-$i" java "${CLUSTER_JAVA_OPTS[@]}" -cp "$DEPS/*" "$MAIN_CLASS" \
                "$CSTATE/node$i/server.properties"
        fi
    done
    require_venv
    if ! DCR_KAFKA_BOOTSTRAP_SERVERS="$(cluster_bootstrap)" DCR_KAFKA_REPLICATION_FACTOR=3 \
            "$VENV_PY" -m shared.kafka.admin ensure --timeout 120; then
        for i in 1 2 3; do tail -n 20 "$LOGS/kafka-$i.log" >&2; done
        exit 1
    fi
    log "cluster ready on $(cluster_bootstrap) (replication factor 3, min.insync.replicas=2)"
}

cluster_stop() {
    # SIGTERM all nodes at once: one by one, the last would wait for a quorum that is gone.
    local i pid
    for i in 1 2 3; do
        if pid="$(pid_of "kafka-$i" "$MAIN_CLASS")"; then kill -TERM "$pid" 2>/dev/null || true; fi
    done
    for i in 3 2 1; do
        if [[ "$KAFKA_NODES" == 3 || -f "$RUN/kafka-$i.pid" ]]; then
            stop_pid "kafka-$i" "$MAIN_CLASS" 30
        fi
    done
}

cluster_status() {
    local i pid
    for i in 1 2 3; do
        if pid="$(pid_of "kafka-$i" "$MAIN_CLASS")"; then echo "kafka-$i: running (pid $pid)"
        else echo "kafka-$i: stopped"; fi
    done
}

if [[ "$KAFKA_NODES" == 3 ]]; then
    start() { cluster_start; }
    status() { cluster_status; }
fi

case "${1:-}" in
    # make down stops whatever this checkout started, whichever KAFKA_NODES it was started with.
    stop) cluster_stop; [[ "$KAFKA_NODES" == 3 ]] || stop; exit 0 ;;
esac

dispatch "install start stop status" "$@"
