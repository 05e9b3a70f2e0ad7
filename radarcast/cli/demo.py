"""Commands: demo (filled in by its issue)."""
