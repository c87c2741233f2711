"""CPU per HTTP request of the server's Numerai client: httpx's own transport against ours
(aiohttp under httpx's API, `numerai_autopilot.numerai.transport`).

    .venv/bin/python bench/http_client.py [--requests 400] [--concurrency 20]

A small JSON endpoint (uvicorn, another process) answers GraphQL-sized POSTs; the figure is
this process's CPU time per request (`time.process_time`), which is what the server's one
event loop pays for each Numerai call of a round.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import time

import httpx

from numerai_autopilot.numerai.transport import async_client
from numerai_autopilot.sandbox.testing import free_port

BODY = {"query": "mutation { create_submission(...) { id } }" * 10, "variables": {"a": 1}}


def _serve(port: int) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def graphql(request: Request) -> JSONResponse:
        await request.body()
        return JSONResponse({"data": {"create_submission": {"id": "0e1c6c4f"}}})

    app = Starlette(routes=[Route("/", graphql, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


async def _measure(http: httpx.AsyncClient, url: str, requests: int, concurrency: int
                   ) -> tuple[float, float]:
    async def one() -> None:
        response = await http.post(url, json=BODY, headers={"Authorization": "Token a$b"})
        response.json()

    for _ in range(2 * concurrency):  # connections opened, code paths warm
        await one()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(requests // concurrency):
        await asyncio.gather(*(one() for _ in range(concurrency)))
    done = requests // concurrency * concurrency
    return ((time.process_time() - cpu) / done * 1e3, (time.perf_counter() - wall) / done * 1e3)


async def _main(url: str, requests: int, concurrency: int) -> None:
    for label in ("httpx's transport", "aiohttp transport"):
        http = httpx.AsyncClient(timeout=10) if label.startswith("httpx") else async_client(
            timeout=10)
        async with http:
            cpu, wall = await _measure(http, url, requests, concurrency)
        print(f"{label:<18} {cpu:6.2f} ms CPU per request  ({wall:.2f} ms wall per request, "
              f"{concurrency} in flight)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    port = free_port()
    server = multiprocessing.Process(target=_serve, args=(port,), daemon=True)
    server.start()
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.post(f"http://127.0.0.1:{port}/", json={})
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        asyncio.run(_main(f"http://127.0.0.1:{port}/", args.requests, args.concurrency))
    finally:
        server.terminate()
        server.join()


if __name__ == "__main__":
    main()
