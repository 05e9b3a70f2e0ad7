"""The ``radarcast`` command line.

Each module here holds the commands of one stage; a command parses its flags, builds a
config, calls one library function and renders the result. Heavy libraries (torch, h5py,
skimage, imageio) are imported inside commands so that ``radarcast --help`` stays instant.
"""

from radarcast.cli._app import app
from radarcast.cli import data, forecast, evaluate, train, animate, demo  # noqa: F401, E402  (registers commands)

__all__ = ["app"]
