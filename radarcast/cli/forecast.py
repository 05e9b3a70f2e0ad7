"""Commands: forecast (filled in by its issue)."""
