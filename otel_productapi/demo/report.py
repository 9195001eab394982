"""What the demo prints: progress, the counts by class, example spans, next steps."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterator
from typing import IO, Final

__all__ = ["Console", "example_blocks", "print_counts"]

_BLOCK_START: Final = re.compile(r"^Span #\d+", re.MULTILINE)
_SHOWN_KEYS: Final = (
    "productapi.",
    "url.template",
    "http.response.status_code",
    "http.status_code",
)
_ANSI: Final = re.compile(r"\x1b\[[0-9;]*m")
#: Where a span's block ends: its events, the next resource or scope, or a metric.
_BLOCK_END: Final = ("Events:", "Links:", "Resource", "Scope", "Metric #")
#: The collector's next log entry (a timestamp) ends a block too.
_LOG_LINE: Final = re.compile(r"^\d{4}-\d\d-\d\dT")


class Console:
    """Lines to a stream; on a terminal, one progress line rewritten in place."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.live = out.isatty()

    def say(self, text: str = "") -> None:
        """Print a line (clearing the progress line first on a terminal)."""
        if self.live:
            self.out.write("\r\x1b[2K")
        self.out.write(text + "\n")
        self.out.flush()

    def progress(self, line: str) -> None:
        """Rewrite the progress line on a terminal; print it elsewhere."""
        if self.live:
            self.out.write("\r\x1b[2K" + line[:200])
            self.out.flush()
        else:
            self.say(line)


def print_counts(console: Console, by_class: Counter[str], retryable: int, source: str) -> None:
    """The requests by ``productapi.error.class`` and the retryable share of failures."""
    total = sum(by_class.values())
    failed = total - by_class["ok"]
    console.say(f"Requests by productapi.error.class, {source}:")
    for name, count in sorted(by_class.items(), key=lambda item: -item[1]):
        label = "(success: no class)" if name == "ok" else name
        console.say(f"  {label:<22}{count:>6}")
    if failed:
        console.say(
            f"Retryable share of failed requests: {100 * retryable / failed:.0f}% "
            f"({retryable} of {failed}) - productapi.error.retryable=true"
        )
    console.say()


def example_blocks(debug_output: str, markers: list[tuple[str, str]]) -> Iterator[str]:
    """Lines showing one span per ``(title, marker)`` from a debug exporter's output.

    Rotel's ``--debug-log`` and the collector's ``debug`` exporter print spans
    alike (``Span #n``, then ``-> key: Str(value)`` attributes).
    """
    text = _ANSI.sub("", debug_output)
    starts = [m.start() for m in _BLOCK_START.finditer(text)]
    blocks = [_span_lines(text[a:b]) for a, b in itertools.pairwise([*starts, len(text)])]
    for title, marker in markers:
        block = next((b for b in blocks if any(line.endswith(marker) for line in b)), None)
        if block is not None:
            yield f"  --- {title}"
            yield from (f"     {line}" for line in block if _shown(line))


def _span_lines(block: str) -> list[str]:
    """A span's own lines: up to its events, the next resource, scope, metric or log entry."""
    lines = []
    for raw in block.splitlines():
        line = raw.strip()
        if line.startswith(_BLOCK_END) or _LOG_LINE.match(line):
            break
        lines.append(line)
    return lines


def _shown(line: str) -> bool:
    return line.startswith(("Name", "Kind", "Status code")) or (
        line.startswith("->") and line[3:].startswith(_SHOWN_KEYS)
    )
