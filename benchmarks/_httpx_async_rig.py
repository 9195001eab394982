"""The ``httpx.AsyncClient`` twin of ``_httpx_rig``: same pool, answers and variants.

Each ``run`` is one ``asyncio.run`` awaiting the requests in turn, so the
event loop's start and stop cost the same in both runs of a measurement and
cancel out of the per-request figure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Final

import httpx
from _httpx_rig import HOST, URL, CannedPool
from _httpx_rig import instrument as _instrument

__all__ = ["HOST", "URL", "VARIANTS", "instrument", "run"]

VARIANTS: Final = ("instrumentor", "floor", "ours")


def instrument(variant: str, path: str) -> Callable[[], None]:
    """Instrument httpx as ``variant`` says (coroutine hooks for the floor); returns the undo."""
    return _instrument(variant, path, coroutines=True)


def run(path: str, urls: Sequence[str]) -> None:
    """GET every URL in turn with a new ``AsyncClient`` in a new event loop."""

    async def send_all() -> None:
        transport = httpx.AsyncHTTPTransport()
        transport._pool = CannedPool(path)  # type: ignore[assignment]  # the canned stand-in
        http = httpx.AsyncClient(transport=transport, trust_env=False)
        for url in urls:
            await http.get(url)
        await http.aclose()

    asyncio.run(send_all())
