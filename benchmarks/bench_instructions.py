"""Instructions per request, counted by valgrind's callgrind, for each variant and path.

Wall-clock figures on shared machines move by ±10%; instruction counts do
not. Each (variant, path) runs twice in its own process under
``valgrind --tool=callgrind``, with N1 and then N2 requests after the same
warm-up; the per-request count is ``(I(N2) - I(N1)) / (N2 - N1)``, so start-up
and imports cancel out. After the warm-up the heap is frozen (``gc.freeze()``):
the garbage collector then walks only what the requests themselves allocate.
Run from the repository root::

    python benchmarks/bench_instructions.py                  # requests, all variants
    python benchmarks/bench_instructions.py --n1 200 --n2 1200

Prints a Markdown table: instructions per request, the extra over the plain
instrumentation, and our extra as a multiple of the floor's (the goal: at
most 1.5). See docs/performance.md. Not a test: figures go to the docs.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Final

_HERE: Final = Path(__file__).resolve().parent
_COLLECTED: Final = re.compile(r"Collected\s*:\s*(\d+)")
_WARM_UP: Final = 100
#: Rigs by client: module (in benchmarks/) and the paths it measures.
RIGS: Final = {
    "requests": "_requests_rig",
    "httpx": "_httpx_rig",
    "httpx-async": "_httpx_async_rig",
}


def _worker(client: str, variant: str, path: str, count: int) -> None:
    """Instrument, warm up, then send ``count`` requests (each to a new id)."""
    sys.path.insert(0, str(_HERE))
    rig = importlib.import_module(RIGS[client])
    rig.instrument(variant, path)
    url = rig.URL
    rig.run(path, [url.format(1_000_000 + i) for i in range(_WARM_UP)])
    urls = [url.format(2_000_000 + i) for i in range(count)]
    # What start-up left (modules, the instrumentations, warm caches) is moved out
    # of the collector's reach: a full collection walks every object, so whether
    # one lands in a run, and how many modules a variant imported, would otherwise
    # swing the per-request count by thousands. Per-request garbage is still collected.
    gc.collect()
    gc.freeze()
    rig.run(path, urls)


def callgrind_total(argv: list[str]) -> int:
    """Instructions callgrind counts for ``python argv...`` (the whole process)."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    command = [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable]
    # Same environment for every run: hash seeds change dict layouts, hence counts.
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(command + argv, capture_output=True, text=True, env=env, check=False)
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"callgrind run failed:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def _instructions(client: str, variant: str, path: str, count: int) -> int:
    here = str(Path(__file__).resolve())
    return callgrind_total([here, "--worker", client, variant, path, str(count)])


def per_request(client: str, variant: str, path: str, n1: int, n2: int) -> float:
    """Instructions per request: the difference of two runs over the difference of counts."""
    low = _instructions(client, variant, path, n1)
    high = _instructions(client, variant, path, n2)
    return (high - low) / (n2 - n1)


def main(argv: list[str] | None = None) -> int:
    """Measure every variant on every path and print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--client", choices=sorted(RIGS), default="requests")
    parser.add_argument("--n1", type=int, default=200)
    parser.add_argument("--n2", type=int, default=1200)
    parser.add_argument("--paths", nargs="+", default=["200", "429"])
    parser.add_argument("--worker", nargs=4, metavar=("CLIENT", "VARIANT", "PATH", "N"))
    args = parser.parse_args(argv)
    if args.worker:
        client, variant, path, count = args.worker
        _worker(client, variant, path, int(count))
        return 0
    sys.path.insert(0, str(_HERE))
    rig = importlib.import_module(RIGS[args.client])
    print(f"{args.client}: instructions per request, ({args.n2} - {args.n1} requests) runs")
    print("| path | instrumentor | floor | ours | floor extra | our extra | ours / floor |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for path in args.paths:
        counts = {v: per_request(args.client, v, path, args.n1, args.n2) for v in rig.VARIANTS}
        base = counts["instrumentor"]
        floor, ours = counts["floor"] - base, counts["ours"] - base
        print(
            f"| {path} | {base:,.0f} | {counts['floor']:,.0f} | {counts['ours']:,.0f} | "
            f"+{floor:,.0f} ({floor / base:+.1%}) | +{ours:,.0f} ({ours / base:+.1%}) | "
            f"{ours / floor:.2f}x |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
