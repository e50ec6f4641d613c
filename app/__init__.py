"""afm — the AI Factory Module lifecycle service."""

__version__ = "0.1.0"
