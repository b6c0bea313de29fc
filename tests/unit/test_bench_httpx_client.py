"""The ingest benchmark's httpx load generator keeps its queue out of httpcore's connection
pool: at most ``max_in_flight`` requests are inside httpx at once, the others wait on the
client's semaphore (httpcore 1.0's pool re-scans every queued request on every assignment, so a
fixed-rate run that fell behind collapsed in the pool's bookkeeping: quiet13, quiet15, quiet16)."""

from __future__ import annotations

import asyncio

import httpx

from bench.ingest import HttpxClient


async def test_no_more_than_the_limit_of_requests_enter_httpx() -> None:
    inside = 0
    most = 0
    release = asyncio.Event()
    full = asyncio.Event()

    async def answer(request: httpx.Request) -> httpx.Response:
        nonlocal inside, most
        inside += 1
        most = max(most, inside)
        if inside == 3:
            full.set()
        await release.wait()
        inside -= 1
        return httpx.Response(202, json={"accepted": True})

    async with httpx.AsyncClient(
        base_url="http://intake", transport=httpx.MockTransport(answer)
    ) as hx:
        client = HttpxClient(hx, max_in_flight=3)
        posts = [asyncio.create_task(client.post("/v1/visits", {}, {})) for _ in range(20)]
        await asyncio.wait_for(full.wait(), timeout=5)
        for _ in range(50):
            await asyncio.sleep(0)  # only yield: give the queued posts every chance to enter
        assert inside == 3
        release.set()
        answers = await asyncio.gather(*posts)

    assert most == 3
    assert answers == [(202, {"accepted": True})] * 20
