"""The only reads of ``requests``' private attributes, one function each.

``requests`` has no public way to ask "is the body already in memory?"
without reading it (``response.content`` reads a streamed body), nor "where
did the body start?" for a file body it sent. tests/test_requests_private.py
fails loudly if a release renames what these read.
"""

from __future__ import annotations

import requests

__all__ = ["body_position", "loaded_body"]


def loaded_body(response: requests.Response) -> bytes | None:
    """The body ``requests`` already read into memory, or ``None``.

    ``None`` for a streamed response whose body is unread (reading it would
    delay the call and change what the caller reads) and for an empty body.
    """
    if not getattr(response, "_content_consumed", False):
        return None
    content = getattr(response, "_content", None)
    return content if isinstance(content, bytes) and content else None


def body_position(request: requests.PreparedRequest) -> int | None:
    """Where a file-like body started when ``requests`` prepared it, or ``None``."""
    position = getattr(request, "_body_position", None)
    return position if isinstance(position, int) else None
