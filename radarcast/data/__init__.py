"""Data: raw readers, units, the HDF5 dataset store, synthetic storms and the torch loader.

``RadarDataset`` and ``open_dataset`` are loaded on first use, so that reading raw files
(a live nowcast to netCDF, say) does not import h5py."""

from radarcast.data.units import Units

__all__ = ["RadarDataset", "Units", "open_dataset"]


def __getattr__(name: str):
    if name in ("RadarDataset", "open_dataset"):
        from radarcast.data import store

        return getattr(store, name)
    raise AttributeError(f"module 'radarcast.data' has no attribute {name!r}")
