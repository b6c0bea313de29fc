"""The facility simulator (``dcr-sim``): realistic traffic for the ingest APIs, over HTTP only.

``params`` (what is simulated, with realistic defaults) -> ``model`` (pure, seeded: a time-ordered
stream of intended reports) -> ``runner`` (paces the stream on a simulated clock, one ordered lane
per facility and service) -> ``sender`` (HTTP with Idempotency-Key and retries) ; ``cli`` wires
them and prints progress and a summary.
"""
