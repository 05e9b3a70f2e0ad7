"""The project's exception for bad user input.

Library code raises :class:`RadarcastError` (a ``ValueError``) at public boundaries with a
message that names what was expected and what came; the CLI turns it into one red line and
exit code 1.
"""


class RadarcastError(ValueError):
    """Bad input from a user: a file, a flag or a configuration value."""
