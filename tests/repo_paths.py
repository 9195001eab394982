"""Where the repository is, for tests in any folder under tests/ (and scripts run from there)."""

from __future__ import annotations

from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parent.parent
