"""Commands: animate (filled in by its issue)."""
