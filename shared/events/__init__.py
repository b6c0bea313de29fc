"""Event contracts: CloudEvents 1.0 envelope (binary mode over Kafka) and one frozen pydantic model
per event type. Import the catalogue from :mod:`shared.events.catalogue`."""
