# One image for every dcr-platform service; docker-compose.yml picks the module to run.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml ./
COPY shared ./shared
COPY services ./services
COPY deploy/city.yaml deploy/city.yaml
COPY deploy/contacts.yaml deploy/contacts.yaml
COPY deploy/postgres/migrations deploy/postgres/migrations
# the Kafka identities and TLS material of the compose `kafka-secrets` job (docs/kafka-cluster.md)
COPY deploy/scripts/lib.sh deploy/scripts/kafka-secrets.sh deploy/scripts/
COPY deploy/kafka/secured-node.sh deploy/kafka/
RUN pip install --no-cache-dir . && useradd --system --uid 10001 dcr
USER dcr
EXPOSE 8001 8002 8003 8004 8006
