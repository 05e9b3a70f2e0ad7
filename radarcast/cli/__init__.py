"""The ``radarcast`` command line.

Each module here holds the commands of one stage; a command parses its flags, builds a
config, calls one library function and renders the result. Heavy libraries (torch, h5py,
skimage, imageio) are imported inside commands so that ``radarcast --help`` stays instant.
"""

from radarcast.cli._app import app

# Importing a module registers its commands; `radarcast --help` lists them in this order,
# the workflow's.
# isort: off
from radarcast.cli import demo, data, train, forecast, evaluate, animate  # noqa: F401, E402
from radarcast.cli import nowcast, export, study  # noqa: F401, E402
# isort: on

__all__ = ["app"]
