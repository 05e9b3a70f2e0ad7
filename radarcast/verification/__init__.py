"""Probabilistic and spatial verification: ensemble scores (CRPS, Brier, reliability, ROC,
rank histogram, spread–skill) and the fractions skill score, as additive accumulators.

Every accumulator keeps plain numpy sums and counts; two accumulators of the same shape
merge by adding them (:meth:`merge`), so shards of windows can be scored apart and merged
bit-identically. Conventions are in docs/metrics.md and in each class's docstring.
"""
