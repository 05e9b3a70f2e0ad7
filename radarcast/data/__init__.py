"""Data: raw readers, units, the HDF5 dataset store, synthetic storms and the torch loader."""

from radarcast.data.store import RadarDataset, open_dataset
from radarcast.data.units import Units

__all__ = ["RadarDataset", "Units", "open_dataset"]
