"""The ``radarcast`` command line.

Each module here holds the commands of one stage; a command parses its flags, builds a
config, calls one library function and renders the result. Heavy libraries (torch, h5py,
skimage, imageio) are imported inside commands so that ``radarcast --help`` stays instant.
"""

from radarcast.cli import animate, data, demo, evaluate, forecast, train  # noqa: F401, E402  (registers commands)
from radarcast.cli._app import app

__all__ = ["app"]
