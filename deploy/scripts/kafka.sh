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
#   kafka.sh rotate ID (KAFKA_NODES=3) a new password for identity ID (docs/kafka-cluster.md)
#
# Data: .state/kafka/data  Log: .state/logs/kafka.log  Pid: .state/run/kafka.pid
#
# KAFKA_NODES=3 (make up KAFKA_NODES=3): a 3-node KRaft cluster instead, every node broker +
# controller (deploy/kafka/cluster.properties), on brokers 127.0.0.1:9092,9192,9292 and
# controllers 19093,19193,19293 (KAFKA_CLUSTER_PORTS / KAFKA_CLUSTER_CONTROLLER_PORTS override),
# heap -Xmx768m -Xms256m each (3 x 768 MiB of 24 GiB; G1). Topics with replication factor 3 and
# min.insync.replicas=2. Data: .state/kafka-cluster/nodeN/data  Log/pid: kafka-N.
# The cluster runs secured (deploy/kafka/secured.properties, docs/kafka-cluster.md): SASL/SCRAM-
# SHA-512 identities admin, intake, supply, incident, projection (passwords and the CA/broker
# certificate from kafka-secrets.sh in .state/auth/kafka/, the credentials added when storage is
# formatted), TLS (KAFKA_CLIENT_PROTOCOL=SASL_SSL, the default; SASL_PLAINTEXT for a comparison
# without TLS), the standard authorizer denying by default and the ACLs of shared/kafka/acls.py.
# The single development node stays PLAINTEXT on 127.0.0.1 (see the docs for why).
set -euo pipefail
LOG_PREFIX=kafka  # used by log()/die() in lib.sh
# shellcheck source=deploy/scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=deploy/kafka/secured-node.sh
source "$ROOT/deploy/kafka/secured-node.sh"  # render_node, scram_args, admin_client_properties

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
KAFKA_SECRETS="$STATE/auth/kafka"
IDENTITIES=("${KAFKA_IDENTITIES[@]}")
CLIENT_PROTOCOL="${KAFKA_CLIENT_PROTOCOL:-SASL_SSL}"
[[ "$CLIENT_PROTOCOL" == SASL_SSL || "$CLIENT_PROTOCOL" == SASL_PLAINTEXT ]] \
    || die "KAFKA_CLIENT_PROTOCOL must be SASL_SSL or SASL_PLAINTEXT, not $CLIENT_PROTOCOL"
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
    "$ROOT/deploy/scripts/kafka-secrets.sh" "$KAFKA_SECRETS"
    for i in 1 2 3; do voters+=("$i@127.0.0.1:${CLUSTER_CONTROLLER_PORTS[i-1]}"); done
    for i in 1 2 3; do
        mkdir -p "$CSTATE/node$i/data"
        # cluster.properties, then the security overlay (later keys win); 0600: admin password
        (umask 077
         render_node "$ROOT/deploy/kafka" "$i" "${CLUSTER_PORTS[i-1]}" "${CLUSTER_CONTROLLER_PORTS[i-1]}" \
             "$(IFS=,; echo "${voters[*]}")" "$CSTATE/node$i/data" "$CLIENT_PROTOCOL" "$KAFKA_SECRETS" \
             >"$CSTATE/node$i/server.properties")
    done
}

# The environment of the admin identity (topics, ACLs) on the cluster.
admin_env() {
    echo DCR_KAFKA_BOOTSTRAP_SERVERS="$(cluster_bootstrap)" DCR_KAFKA_REPLICATION_FACTOR=3 \
        DCR_KAFKA_SECURITY_PROTOCOL="$CLIENT_PROTOCOL" DCR_KAFKA_USERNAME=admin \
        DCR_KAFKA_PASSWORD_FILE="$KAFKA_SECRETS/admin.password" \
        DCR_KAFKA_CA_FILE="$KAFKA_SECRETS/tls/ca.pem"
}

cluster_format() {
    # One cluster id for the three nodes (static quorum: no --standalone).
    [[ -s "$CSTATE/cluster.id" ]] || java -cp "$DEPS/*" "-Dlog4j2.configurationFile=$LOG4J" \
        kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1 >"$CSTATE/cluster.id"
    local i scram=()
    mapfile -t scram < <(scram_args "$KAFKA_SECRETS")
    # Storage formatted before the cluster was secured has no SCRAM credentials: set it aside.
    if [[ -f "$CSTATE/node1/data/meta.properties" && ! -f "$CSTATE/secured" ]]; then
        local aside; aside="$CSTATE.before-$(date +%Y%m%dT%H%M%S)"
        log "cluster storage predates its identities: moving it to $aside and reformatting"
        mv "$CSTATE" "$aside"
        mkdir -p "$CSTATE"
        cp "$aside/cluster.id" "$CSTATE/cluster.id" 2>/dev/null || true
        cluster_render
    fi
    for i in 1 2 3; do
        [[ -f "$CSTATE/node$i/data/meta.properties" ]] && continue
        log "formatting node $i (cluster id $(cat "$CSTATE/cluster.id"))"
        java -cp "$DEPS/*" "-Dlog4j2.configurationFile=$LOG4J" kafka.tools.StorageTool format \
            -t "$(cat "$CSTATE/cluster.id")" -c "$CSTATE/node$i/server.properties" --ignore-formatted \
            "${scram[@]}" >>"$LOGS/kafka-$i.log" 2>&1 \
            || die "storage format of node $i failed, see $LOGS/kafka-$i.log"
    done
    touch "$CSTATE/secured"
}

cluster_start() {
    local i pid
    # Beside the single node only on other ports (make bench-kafka: KAFKA_CLUSTER_PORTS without 9092).
    if running_pid >/dev/null && [[ " ${CLUSTER_PORTS[*]} " == *" 9092 "* ]]; then
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
    # shellcheck disable=SC2046  # admin_env prints VAR=value words
    if ! env $(admin_env) "$VENV_PY" -m shared.kafka.admin ensure --timeout 120 \
            || ! env $(admin_env) "$VENV_PY" -m shared.kafka.acls apply; then
        for i in 1 2 3; do tail -n 20 "$LOGS/kafka-$i.log" >&2; done
        exit 1
    fi
    log "cluster ready on $(cluster_bootstrap) (replication factor 3, min.insync.replicas=2, $CLIENT_PROTOCOL)"
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

# kafka.sh rotate NAME (KAFKA_NODES=3): a new random password for identity NAME, set on the
# cluster as admin (ConfigCommand, SCRAM-SHA-512) and then written to .state/auth/kafka/NAME.password;
# restart that service afterwards (services.sh stop-one NAME && services.sh start): connections
# already authenticated stay open, new ones need the new password.
cluster_rotate() {
    local who="$1" new client
    [[ " ${IDENTITIES[*]} " == *" $who "* ]] || die "unknown identity $who (one of ${IDENTITIES[*]})"
    new="$(openssl rand -hex 32)"
    client="$(umask 077 && mktemp)"
    # shellcheck disable=SC2064  # expand now: $client is local
    trap "rm -f '$client'" EXIT
    admin_client_properties "$CLIENT_PROTOCOL" "$KAFKA_SECRETS" >"$client"
    java -cp "$DEPS/*" "-Dlog4j2.configurationFile=$LOG4J" kafka.admin.ConfigCommand \
        --bootstrap-server "$(cluster_bootstrap)" --command-config "$client" --alter \
        --entity-type users --entity-name "$who" \
        --add-config "SCRAM-SHA-512=[iterations=8192,password=$new]" >>"$LOGS/kafka-admin.log" 2>&1 \
        || die "the cluster refused the new credential of $who (see $LOGS/kafka-admin.log)"
    (umask 077 && echo "$new" >"$KAFKA_SECRETS/$who.password.tmp" \
        && mv "$KAFKA_SECRETS/$who.password.tmp" "$KAFKA_SECRETS/$who.password")
    [[ "$who" == admin ]] && log "admin rotated: re-render the nodes (kafka.sh stop; kafka.sh start) so inter-broker logins use it"
    log "credential of $who rotated; restart it: deploy/scripts/services.sh stop-one $who && deploy/scripts/services.sh start"
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

rotate() {
    [[ "$KAFKA_NODES" == 3 ]] || die "rotate: the single node has no identities (KAFKA_NODES=3)"
    cluster_rotate "${1:?usage: $0 rotate IDENTITY}"
}

dispatch "install start stop status rotate" "$@"
