"""Archive-scale runs: windows sharded over local worker processes or a Dask cluster.

:mod:`~radarcast.parallel.engine` runs shards (``--workers N`` / ``--scheduler ADDRESS``);
:mod:`~radarcast.parallel.forecast` assembles forecast files from per-shard parts. Results
are those of a single process, bit for bit. docs/scale.md says how to run it.
"""
