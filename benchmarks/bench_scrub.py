"""Cost of scrubbing and URL redaction on crafted hostile input.

Run from the repository root::

    python benchmarks/bench_scrub.py                  # this tree
    PYTHONPATH=<old tree> python benchmarks/bench_scrub.py   # another version

Bodies are made by repeating a unit built to hurt a pattern (the body that
made the old e-mail pattern backtrack, near-miss e-mails, digit groups that
look like phone numbers, runs that look like keys...) up to 64 KB, 1 MB and
16 MB. Three figures per body:

- ``message``: what a response costs the hooks: the error message scrubbed
  and cut to the default limit (256) and to the largest allowed (8192). A
  version whose ``scrub_text`` has no ``max_length`` is measured as its
  hooks used it: scrubbed whole, then cut.
- ``whole``: ``scrub_text`` on the whole text, uncut (the cost per MB shows
  whether the patterns are linear).
- ``url``: ``redact_url`` on a URL whose path and query are the body.

Each figure is the best of ``--repeats`` runs (this machine is shared; the
minimum is the least disturbed); a measurement that takes longer than
``--budget`` seconds is reported as such and the larger sizes are skipped.
Not a timed test: the figures go to docs/performance.md.
"""

from __future__ import annotations

import argparse
import inspect
import platform
import sys
import time
from collections.abc import Callable

from otel_productapi._core.scrub import scrub_text
from otel_productapi._core.urls import redact_url

SIZES = {"64 KB": 64 * 1024, "1 MB": 1024 * 1024, "16 MB": 16 * 1024 * 1024}
LIMITS = (256, 8192)
#: name -> the repeated unit.
BODIES: dict[str, str] = {
    # The body: a long local part, then eight labels and no TLD.
    "old-email-backtrack": "a" * 64 + "@" + ("a" * 62 + ".") * 8 + "a1 ",
    "near-miss-emails": "a" * 60 + "@x",
    "at-signs": "a@",
    "valid-emails": "ab@cd.ef ",
    "percent-40": "a%40",
    "plus-digits": "+1 2 3 4 5 6 ",
    "digit-groups": "012 34 56 78 90 12 34 ",
    "dates": "2024-01-15 ",
    "key-like-runs": "aB3dE5fG7hI9jK1lM3n ",
    "key-value-names": "password=x ",
    "prose": "Invalid query filter on field name. ",
    # Full-width forms (ASCII + 0xFEE0), read once more with those folded to ASCII.
    "fullwidth-emails": "ab\uff20cd.ef ",
    "fullwidth-digit-groups": "012 34 56 78 90 12 34 ".translate(
        {code: code + 0xFEE0 for code in range(0x30, 0x3A)}
    ),
    "fullwidth-prose": "在庫がありません\uff08品番\uff1aAB-123\uff09。",
}

_CUTS = "max_length" in inspect.signature(scrub_text).parameters


def _message(text: str, limit: int) -> str:
    if _CUTS:
        return scrub_text(text, max_length=limit)  # type: ignore[call-arg,unused-ignore]
    return scrub_text(text)[:limit]  # what the hooks did: scrub whole, then cut


def _best(run: Callable[[], object], repeats: int, budget: float) -> float | None:
    """Best time of ``repeats`` runs in seconds, or None if one run exceeds ``budget``."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        elapsed = time.perf_counter() - start
        best = min(best, elapsed)
        if elapsed > budget:
            return None
    return best


def _shown(seconds: float | None, budget: float) -> str:
    if seconds is None:
        return f"> {budget:g} s"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    return f"{seconds * 1000:.2f} ms"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--budget", type=float, default=20.0, help="seconds per measurement")
    parser.add_argument("--bodies", nargs="*", default=list(BODIES), choices=list(BODIES))
    args = parser.parse_args(argv)
    print(f"Python {platform.python_version()}, scrub_text cuts first: {_CUTS}")
    header = ["body", "size", *(f"message {n}" for n in LIMITS), "whole", "url"]
    print(" | ".join(header))
    for name in args.bodies:
        unit = BODIES[name]
        too_slow: set[str] = set()
        for size_name, size in SIZES.items():
            text = (unit * (size // len(unit) + 1))[:size]
            url = "https://api.example.com/v1/" + text.replace(" ", "/") + "?q=" + text
            runs: dict[str, Callable[[], object]] = {
                **{
                    f"message {n}": (lambda t=text, n=n: _message(t, n))  # type: ignore[misc]
                    for n in LIMITS
                },
                "whole": lambda t=text: scrub_text(t),  # type: ignore[misc]
                "url": lambda u=url: redact_url(u),  # type: ignore[misc]
            }
            cells = [name, size_name]
            for column, run in runs.items():
                if column in too_slow:
                    cells.append("skipped")
                    continue
                seconds = _best(run, args.repeats, args.budget)
                if seconds is None:
                    too_slow.add(column)
                cells.append(_shown(seconds, args.budget))
            print(" | ".join(cells), flush=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
