"""benchmarks/bench_opcodes.py ranks what our code runs per request (see docs/performance.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parent.parent


def _functions(client: str, path: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "benchmarks/bench_opcodes.py", "--client", client, "--path", path],
        cwd=_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    rows = [line.split(None, 1) for line in done.stdout.splitlines()]
    return {where: float(count) for count, where in rows}


@pytest.mark.parametrize("client", ["httpx", "httpx-async"])
def test_only_an_error_response_is_read_ahead(client: str) -> None:
    """On 429 the transport patch reads the body ahead and the tagger looks its message
    up; on 200 neither runs, and the hooks run on every request of both."""
    error, success = _functions(client, "429"), _functions(client, "200")
    read_ahead = "_read_ahead" if client == "httpx" else "_aread_ahead"
    assert error[f"_adapters/httpx/transport.py:{read_ahead}"] > 0
    assert error["_telemetry/tagger.py:_message"] > 0
    assert f"_adapters/httpx/transport.py:{read_ahead}" not in success
    assert "_telemetry/tagger.py:_message" not in success
    for counts in (error, success):
        assert counts["_telemetry/tagger.py:on_request"] > 0
        assert counts["_telemetry/tagger.py:on_response"] > 0
    # Reading the body ahead is what an error response costs more.
    assert error[f"total ({client}, 429)"] > success[f"total ({client}, 200)"]
