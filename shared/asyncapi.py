"""AsyncAPI 3.0 description of the event topics, generated from the event catalogue.

One FastStream publisher per catalogue entry (channel = event type, address = physical topic,
message payload = the pydantic payload model). The broker built here is only described, never
started: it opens no connection.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response
from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI

from shared.events.catalogue import CATALOGUE
from shared.settings import KafkaSettings

_ENVELOPE_NOTE = (
    "CloudEvents 1.0 in Kafka binary mode: attributes in headers ce_specversion, ce_id, ce_type "
    "(= this channel's name), ce_source (/facilities/<id> or /districts/<id>), ce_time, "
    "ce_schemaversion; content-type application/json; the record key is the facility id "
    "(district id for district events). The value is the payload below."
)


def asyncapi_document(
    title: str, version: str = "1.0", description: str = "", kafka: KafkaSettings | None = None
) -> dict[str, Any]:
    """The AsyncAPI document (as JSON-able dict) of every catalogue event."""
    kafka = kafka or KafkaSettings()
    broker = KafkaBroker(kafka.bootstrap_servers, logger=None)
    for spec in CATALOGUE.values():
        doc = (spec.model.__doc__ or "").strip()
        broker.publisher(
            kafka.topic(spec.topic),
            title=spec.type,
            schema=spec.model,
            description=f"{doc}\n\n{_ENVELOPE_NOTE}".strip(),
        )
    spec_doc = AsyncAPI(
        broker,
        title=title,
        version=version,
        description=description or None,
        schema_version="3.0.0",
    )
    result: dict[str, Any] = spec_doc.to_specification().to_jsonable()
    return result


def install_asyncapi(
    app: FastAPI, title: str, description: str = "", kafka: KafkaSettings | None = None
) -> None:
    """Serve the AsyncAPI document at ``GET /asyncapi.json`` (built once, on first request) for
    the topics of ``kafka`` (the app's settings; default ``DCR_KAFKA_*``)."""
    cache: list[bytes] = []

    @app.get("/asyncapi.json", tags=["docs"], summary="AsyncAPI 3.0 description of the topics")
    async def asyncapi_json() -> Response:
        if not cache:
            document = asyncapi_document(title, description=description, kafka=kafka)
            cache.append(json.dumps(document).encode())
        return Response(cache[0], media_type="application/json")
