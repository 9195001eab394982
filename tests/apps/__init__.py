"""Small programs the tests run in a subprocess (under ``opentelemetry-instrument``)."""
