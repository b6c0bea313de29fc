#!/usr/bin/env bash
# Kafka identities and TLS material of a secured broker or cluster (issue 16, docs/kafka-cluster.md).
#
#   kafka-secrets.sh [DIR]   (default .state/auth/kafka) create what is missing, keep what exists:
#     DIR/<identity>.password   a random password (0600) for admin, intake, supply, incident,
#                               projection: the SCRAM-SHA-512 credentials (kafka.sh adds them
#                               when it formats storage) and the DCR_KAFKA_PASSWORD_FILE of a service
#     DIR/tls/ca.pem, ca.key    a CA of this checkout (10 years, key 0600)
#     DIR/tls/broker.pem        the brokers' certificate (SAN 127.0.0.1, localhost, kafka,
#                               kafka-2, kafka-3; 2 years), signed by the CA, followed by its
#                               unencrypted PKCS#8 key (0600): Kafka's PEM key store
#
#
#   kafka-secrets.sh DIR --layout OUT SERVICE_UID BROKER_UID   (docker-compose's `kafka-secrets`
#   job) then also lays DIR out per identity: OUT/<identity>/{password,ca.pem} owned by
#   SERVICE_UID (dir 0500, password 0400): a process mounting its subpath sees only its own
#   credential; OUT/broker/ owned by BROKER_UID: every password (for --add-scram), tls/ca.pem
#   and tls/broker.pem, never the CA key.
#
# Random per checkout, never committed; the tests call it on their own directory (and on a
# second one for a CA the brokers do not use).
set -euo pipefail
LOG_PREFIX=kafka-secrets
HERE="$(dirname "${BASH_SOURCE[0]}")"
# shellcheck source=deploy/scripts/lib.sh
source "$HERE/lib.sh"
# shellcheck source=deploy/kafka/secured-node.sh
source "$ROOT/deploy/kafka/secured-node.sh"  # KAFKA_IDENTITIES

IDENTITIES=("${KAFKA_IDENTITIES[@]}")
DIR="${1:-$STATE/auth/kafka}"
TLS="$DIR/tls"

command -v openssl >/dev/null || apt_ensure openssl
umask 077
mkdir -p "$TLS"

for who in "${IDENTITIES[@]}"; do
    [[ -s "$DIR/$who.password" ]] && continue
    openssl rand -hex 32 >"$DIR/$who.password.tmp"
    mv "$DIR/$who.password.tmp" "$DIR/$who.password"
done

if [[ ! -s "$TLS/ca.pem" || ! -s "$TLS/ca.key" ]]; then
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 -subj "/CN=dcr-platform Kafka CA" \
        -keyout "$TLS/ca.key" -out "$TLS/ca.pem" 2>/dev/null
    rm -f "$TLS/broker.pem"
fi

if [[ ! -s "$TLS/broker.pem" ]]; then
    openssl req -newkey rsa:2048 -nodes -sha256 -subj "/CN=dcr-kafka-broker" \
        -keyout "$TLS/broker.key.tmp" -out "$TLS/broker.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kafka,DNS:kafka-2,DNS:kafka-3\nextendedKeyUsage=serverAuth,clientAuth\n' \
        >"$TLS/broker.ext"
    openssl x509 -req -in "$TLS/broker.csr" -CA "$TLS/ca.pem" -CAkey "$TLS/ca.key" \
        -CAcreateserial -days 730 -sha256 -extfile "$TLS/broker.ext" -out "$TLS/broker.crt" 2>/dev/null
    openssl pkcs8 -topk8 -nocrypt -in "$TLS/broker.key.tmp" -out "$TLS/broker.key"
    cat "$TLS/broker.crt" "$TLS/broker.key" >"$TLS/broker.pem"
    rm -f "$TLS/broker.key.tmp" "$TLS/broker.csr" "$TLS/broker.ext" "$TLS/broker.crt" "$TLS/broker.key" \
        "$TLS/ca.srl"
fi
chmod 600 "$DIR"/*.password "$TLS/ca.key" "$TLS/broker.pem"
chmod 644 "$TLS/ca.pem"

# --layout OUT SERVICE_UID BROKER_UID: one subpath per identity and the brokers' copy.
if [[ "${2:-}" == --layout ]]; then
    OUT="${3:?--layout OUT SERVICE_UID BROKER_UID}" SERVICE_UID="${4:?}" BROKER_UID="${5:?}"
    for who in "${IDENTITIES[@]}"; do
        install -d -o "$SERVICE_UID" -m 0500 "$OUT/$who"
        install -o "$SERVICE_UID" -m 0400 "$DIR/$who.password" "$OUT/$who/password"
        install -o "$SERVICE_UID" -m 0444 "$TLS/ca.pem" "$OUT/$who/ca.pem"
    done
    install -d -o "$BROKER_UID" -m 0500 "$OUT/broker" "$OUT/broker/tls"
    for who in "${IDENTITIES[@]}"; do
        install -o "$BROKER_UID" -m 0400 "$DIR/$who.password" "$OUT/broker/$who.password"
    done
    install -o "$BROKER_UID" -m 0400 "$TLS/ca.pem" "$TLS/broker.pem" "$OUT/broker/tls/"
fi
