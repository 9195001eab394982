"""A service that calls the Product API in a loop, knowing nothing about otel_productapi.

Run under ``opentelemetry-instrument`` (the SDK, its exporters and our hooks
come from the environment)::

    opentelemetry-instrument python zero_code_service.py BASE_URL [--rate RPS] [--count N]

It sends ``GET /v1/projects/p1/users/u<n>`` at ``--rate`` requests per
second; every fifth call looks a user up by e-mail address with an access
token and an e-mail in the query string, the personal data that must never
reach a trace. It stops after ``--count`` calls, or on SIGTERM/SIGINT, and
exits normally so that the SDK flushes its spans and metrics.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from types import FrameType

import requests

#: Personal data the service puts in its URLs; the tests assert none reaches Jaeger.
EMAIL_IN_PATH = "ada.lovelace@example.com"
EMAIL_IN_QUERY = "grace.hopper@example.com"
TOKEN_IN_QUERY = "tok_live_9f8e7d6c5b4a39281706"
PERSONAL_PATH = (
    f"/v1/projects/p1/users/{EMAIL_IN_PATH}?access_token={TOKEN_IN_QUERY}&email={EMAIL_IN_QUERY}"
)


def main(argv: list[str]) -> int:
    """Call the API until told to stop."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("base_url")
    parser.add_argument("--rate", type=float, default=20.0, help="requests per second")
    parser.add_argument("--count", type=int, default=0, help="stop after N calls (0: never)")
    args = parser.parse_args(argv)

    stop = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)

    interval = 1.0 / args.rate
    next_call = time.monotonic()
    sent = 0
    with requests.Session() as session:
        while not stop.is_set() and (args.count == 0 or sent < args.count):
            sent += 1
            path = PERSONAL_PATH if sent % 5 == 0 else f"/v1/projects/p1/users/u{sent % 7}"
            try:
                session.get(args.base_url + path, timeout=2)
            except requests.RequestException as exc:  # counted as a transport error; go on
                print(f"request failed: {exc}", file=sys.stderr, flush=True)
            next_call += interval
            stop.wait(max(0.0, next_call - time.monotonic()))
    print(f"sent={sent}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
