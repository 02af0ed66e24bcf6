"""A synchronous HTTP client for a FastAPI app in tests, on every fastapi/httpx pair we support.

``fastapi.testclient.TestClient`` works in the A1111 env (fastapi 0.94, httpx 0.24) but not in the
standalone one: starlette 0.27 (fastapi 0.104) passes ``app=`` to ``httpx.Client``, which httpx
0.28 removed. There we drive the app through ``httpx.ASGITransport`` with an ``AsyncClient``,
one event loop per request: still the real app, routing and serialisation, no network.
"""

from __future__ import annotations

import asyncio
from typing import Any


class _AsgiClient:
    def __init__(self, app: Any) -> None:
        self.app = app

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        import httpx

        async def go() -> Any:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                return await client.request(method, url, **kwargs)

        return asyncio.run(go())

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Any:
        return self.request("POST", url, **kwargs)


def api_client(app: Any) -> Any:
    """``TestClient(app)`` where it works, else an ASGI-transport client with ``get``/``post``/``app``."""
    from fastapi.testclient import TestClient

    try:
        return TestClient(app)
    except TypeError:  # starlette < 0.35 with httpx >= 0.28
        return _AsgiClient(app)


def local_gates(*folders: Any) -> Any:
    """``ApiGates`` of a loopback server without credentials that allows exactly ``folders``
    (not the process-wide folders other tests opened in the UI)."""
    from lora_bakery.extension.allowed_folders import AllowList
    from lora_bakery.extension.api_gates import ApiGates

    return ApiGates(allow=AllowList([str(f) for f in folders], session=lambda: []))
