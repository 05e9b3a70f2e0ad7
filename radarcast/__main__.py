"""``python -m radarcast``: the command line. The guard keeps a spawned worker process, which
imports the main module under another name, from running the CLI a second time."""

from radarcast.cli import app

if __name__ == "__main__":
    app(prog_name="radarcast")
