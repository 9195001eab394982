"""Bytecodes our code runs per request, by function: where the instructions go.

Callgrind (``bench_instructions.py``) says how much a request costs, not
where: under Python 3.11 every Python function is the same C loop to it.
This counts the bytecodes each function of ``otel_productapi`` executes per
request (``sys.settrace`` opcode events) in the same rigs, after the same
warm-up. A bytecode costs roughly 40 to 60 instructions, so the counts rank
the hot spots; they say nothing about C code called from them (httpx's
stream machinery, the SDK). Run from the repository root::

    python benchmarks/bench_opcodes.py --client httpx --path 429
"""

from __future__ import annotations

import argparse
import collections
import importlib
import sys
from pathlib import Path
from types import FrameType
from typing import Any, Final

_HERE: Final = Path(__file__).resolve().parent
_PACKAGE: Final = "otel_productapi"
RIGS: Final = {
    "requests": "_requests_rig",
    "httpx": "_httpx_rig",
    "httpx-async": "_httpx_async_rig",
}


def opcodes_per_request(client: str, path: str, count: int) -> dict[str, float]:
    """``module:function -> bytecodes per request`` for ``count`` requests after a warm-up."""
    sys.path.insert(0, str(_HERE))
    rig = importlib.import_module(RIGS[client])
    rig.instrument("ours", path)
    rig.run(path, [rig.URL.format(1_000_000 + i) for i in range(100)])
    counts: collections.Counter[str] = collections.Counter()

    def trace(frame: FrameType, event: str, arg: Any) -> Any:
        code = frame.f_code
        if _PACKAGE not in code.co_filename:
            return None
        frame.f_trace_opcodes = True
        where = f"{code.co_filename.rsplit(_PACKAGE, 1)[-1].lstrip('/')}:{code.co_name}"

        def local(frame: FrameType, event: str, arg: Any) -> Any:
            if event == "opcode":
                counts[where] += 1
            return local

        return local

    urls = [rig.URL.format(2_000_000 + i) for i in range(count)]
    sys.settrace(trace)
    try:
        rig.run(path, urls)
    finally:
        sys.settrace(None)
    return {where: total / count for where, total in counts.most_common()}


def main(argv: list[str] | None = None) -> int:
    """Print bytecodes per request by function, most first, and the total."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--client", choices=sorted(RIGS), default="requests")
    parser.add_argument("--path", default="200")
    parser.add_argument("--count", type=int, default=50)
    args = parser.parse_args(argv)
    found = opcodes_per_request(args.client, args.path, args.count)
    for where, per_request in found.items():
        print(f"{per_request:8.1f}  {where}")
    print(f"{sum(found.values()):8.1f}  total ({args.client}, {args.path})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
