"""``python -m otel_productapi`` runs the command line."""

import sys

from otel_productapi.cli import main

sys.exit(main())
