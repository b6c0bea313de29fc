# shellcheck shell=bash
# One node of the secured 3-node cluster (issue 16, docs/kafka-cluster.md): its properties and its
# SCRAM identities. Sourced by deploy/scripts/kafka.sh (make up KAFKA_NODES=3) and by
# deploy/kafka/compose-node.sh (docker-compose's `cluster` profile), so both render the same
# properties and add the same credentials at storage format. Needs bash, cat and sed only
# (it runs inside the apache/kafka image too).

# The identities of deploy/scripts/kafka-secrets.sh: admin + one per service (shared/kafka/acls.py).
KAFKA_IDENTITIES=(admin intake supply incident projection)

# render_node KAFKA_DIR NODE_ID PORT CONTROLLER_PORT VOTERS DATA_DIR CLIENT_PROTOCOL SECRETS
# prints KAFKA_DIR/cluster.properties followed by the security overlay KAFKA_DIR/secured.properties
# (later keys win) with every placeholder filled; SECRETS is kafka-secrets.sh's directory
# (admin.password, tls/ca.pem, tls/broker.pem). The output holds the admin password: write it 0600.
render_node() {
    local kafka_dir="$1" node_id="$2" port="$3" controller_port="$4" voters="$5" data_dir="$6"
    local protocol="$7" secrets="$8" admin_password
    admin_password="$(cat "$secrets/admin.password")"
    cat "$kafka_dir/cluster.properties" - "$kafka_dir/secured.properties" <<<"" | sed \
        -e "s|@NODE_ID@|$node_id|g" -e "s|@PORT@|$port|g" -e "s|@CONTROLLER_PORT@|$controller_port|g" \
        -e "s|@VOTERS@|$voters|g" -e "s|@DATA_DIR@|$data_dir|g" -e "s|@CLIENT_PROTOCOL@|$protocol|g" \
        -e "s|@TLS_DIR@|$secrets/tls|g" -e "s|@ADMIN_PASSWORD@|$admin_password|g"
}

# scram_args SECRETS: the StorageTool / kafka-storage.sh format arguments adding every identity's
# SCRAM-SHA-512 credential, one word per line (read them with mapfile).
scram_args() {
    local who
    for who in "${KAFKA_IDENTITIES[@]}"; do
        printf '%s\n' --add-scram "SCRAM-SHA-512=[name=$who,password=$(cat "$1/$who.password")]"
    done
}

# admin_client_properties PROTOCOL SECRETS: a Kafka tool's --command-config as admin (0600).
admin_client_properties() {
    echo "security.protocol=$1"
    echo "sasl.mechanism=SCRAM-SHA-512"
    echo "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"admin\" password=\"$(cat "$2/admin.password")\";"
    echo "ssl.truststore.type=PEM"
    echo "ssl.truststore.location=$2/tls/ca.pem"
}
