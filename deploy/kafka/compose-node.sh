#!/usr/bin/env bash
# Entry point of the Kafka nodes of docker-compose.yml (runs inside the apache/kafka image).
#
# Default (the single development node): the image's own start, /etc/kafka/docker/run,
# configured by the KAFKA_* variables of docker-compose.yml (PLAINTEXT, as the scripts' node).
#
# DCR_NODE_SECURED=true (deploy/kafka/cluster.env, the `cluster` profile): the node of
# `make up KAFKA_NODES=3`: deploy/kafka/cluster.properties + secured.properties rendered by
# the same render_node as deploy/scripts/kafka.sh (deploy/kafka/secured-node.sh), the SCRAM
# identities added when storage is formatted (kafka-storage.sh format --add-scram, from the
# passwords kafka-secrets.sh generated into the `kafka-auth` volume), SASL_SSL with the
# broker certificate from the same volume. The container differs only in its addresses: it
# listens on every interface and advertises its service name (DCR_NODE_HOST: kafka, kafka-2,
# kafka-3, names in the certificate). The image's KAFKA_* variables are then not read.
set -euo pipefail
[[ "${DCR_NODE_SECURED:-false}" == true ]] || exec /etc/kafka/docker/run

# The container's paths and ports (overridable only so that tests/faults/test_compose_cluster.py
# can run this entry point on the host, on free ports, with the Maven jars as KAFKA_HOME).
KAFKA_HOME="${KAFKA_HOME:-/opt/kafka}"
KAFKA_DIR="${DCR_NODE_CONF:-/dcr/kafka}"          # deploy/kafka, mounted read-only
SECRETS="${DCR_NODE_SECRETS:-/kafka-auth}"        # the brokers' copy (kafka-auth subpath broker)
DATA="${DCR_NODE_DATA:-/var/lib/kafka/data}"
RUN_DIR="${DCR_NODE_RUN:-/tmp}"
PORT="${DCR_NODE_PORT:-9092}"
CONTROLLER_PORT="${DCR_NODE_CONTROLLER_PORT:-19093}"
PROPS="$RUN_DIR/dcr-server.properties"          # holds the admin password: 0600, never in a volume
ADMIN_CLIENT="$RUN_DIR/dcr-admin.properties"    # the health check's --command-config (0600)
: "${KAFKA_NODE_ID:?}" "${DCR_NODE_HOST:?}" "${KAFKA_CONTROLLER_QUORUM_VOTERS:?}" "${CLUSTER_ID:?}"
PROTOCOL="${DCR_NODE_CLIENT_PROTOCOL:-SASL_SSL}"

# shellcheck source=deploy/kafka/secured-node.sh
source "$KAFKA_DIR/secured-node.sh"
umask 077
{
    render_node "$KAFKA_DIR" "$KAFKA_NODE_ID" "$PORT" "$CONTROLLER_PORT" \
        "$KAFKA_CONTROLLER_QUORUM_VOTERS" "$DATA" "$PROTOCOL" "$SECRETS"
    echo "listeners=CLIENT://:$PORT,CONTROLLER://:$CONTROLLER_PORT"
    echo "advertised.listeners=CLIENT://$DCR_NODE_HOST:$PORT"
} >"$PROPS"
admin_client_properties "$PROTOCOL" "$SECRETS" >"$ADMIN_CLIENT"

# Storage formatted without the identities (a volume of the plain single node) is never
# reused or wiped here: stop with a clear message (docs/kafka-cluster.md, "docker compose").
if [[ -f "$DATA/meta.properties" && ! -f "$DATA/dcr-secured" ]]; then
    echo "compose-node: $DATA was formatted without the SCRAM identities (a plain node's" \
        "volume); give the cluster fresh volumes" >&2
    exit 1
fi
if [[ ! -f "$DATA/meta.properties" ]]; then
    mapfile -t scram < <(scram_args "$SECRETS")
    "$KAFKA_HOME/bin/kafka-storage.sh" format -t "$CLUSTER_ID" -c "$PROPS" "${scram[@]}"
    touch "$DATA/dcr-secured"
fi
exec "$KAFKA_HOME/bin/kafka-server-start.sh" "$PROPS"
