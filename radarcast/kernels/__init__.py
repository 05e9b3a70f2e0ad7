"""Numerical kernels shared by baselines and models: optical flow, advection, noise."""
