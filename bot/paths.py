"""Where the embedded data lives: inside the installed package when built as a wheel
(see pyproject.toml, force-include), else in the source checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parent


def _first_existing(*candidates: Path) -> Path:
    return next((p for p in candidates if p.exists()), candidates[-1])


CATALOGUE_DIR = _first_existing(_PACKAGE / "_data" / "offers" / "kassel", _CHECKOUT / "offers" / "kassel")
LOCALES_DIR = _first_existing(_PACKAGE / "_data" / "locales", _CHECKOUT / "locales")
