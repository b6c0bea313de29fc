"""Whether an answer is what the app's OpenAPI document says it is (the typed APIs, issue 17)."""

from __future__ import annotations

from typing import Any

import jsonschema
from fastapi import FastAPI


def conforms(app: FastAPI, path_template: str, body: Any, status: int = 200) -> None:
    """Assert ``body`` validates against the JSON schema of ``GET path_template``'s answer."""
    doc = app.openapi()
    content = doc["paths"][path_template]["get"]["responses"][str(status)]["content"]
    jsonschema.validate(body, {**content["application/json"]["schema"], **doc})
