"""Noise kernels: spectra, AR statistics, CDF matching, bps motion perturbations."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from radarcast.kernels import noise  # noqa: E402


def _smooth_field(seed: int, h: int = 64, w: int = 80) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    white = torch.randn(h, w, generator=g)
    k = torch.fft.rfft2(white)
    fy = torch.fft.fftfreq(h).abs()[:, None]
    fx = torch.fft.rfftfreq(w)[None, :]
    k = k / (1.0 + 40.0 * torch.sqrt(fy**2 + fx**2)) ** 1.5  # a red spectrum
    return torch.fft.irfft2(k, s=(h, w))


def test_complex_noise_has_unit_variance_per_mode_in_real_space():
    g = torch.Generator().manual_seed(0)
    h, w = 48, 60
    eps = noise.complex_noise(200, h, w, g)
    field = torch.fft.irfft2(eps, s=(h, w))
    # Parseval: unit-power modes give a real field of variance 1 / (h·w)
    assert float(field.var() * h * w) == pytest.approx(1.0, rel=0.02)


def test_ar_noise_keeps_the_observed_spectrum_and_decorrelates_small_scales_first():
    h, w, n_bands = 64, 80, 5
    x = _smooth_field(1, h, w)
    x_hat = torch.fft.rfft2(x - x.mean())
    band = noise.octave_bands(h, w, n_bands)
    rho = torch.tensor([0.99, 0.95, 0.8, 0.5, 0.1], dtype=torch.float64)
    phi1, phi2, sigma = noise.ar_parameters(rho)
    g = torch.Generator().manual_seed(2)
    ar = noise.SpectralAR(x_hat, None, phi1, phi2, sigma, band, x_hat.abs(), 400, w, g)
    fields = [ar.step() for _ in range(6)]
    last = torch.fft.rfft2(fields[-1])
    ratio = (last.abs() ** 2).mean(0) / torch.clamp(x_hat.abs() ** 2, min=1e-12)
    for j in range(1, n_bands):  # the expected power stays the observed one in every band
        assert float(ratio[band == j].mean()) == pytest.approx(1.0, rel=0.1)
    corr = noise.band_correlation(last, x_hat.expand_as(last), band, n_bands).mean(0)
    expect = rho**6
    np.testing.assert_allclose(corr[1:].numpy(), expect[1:].numpy(), atol=0.05)


def test_band_correlation_of_a_field_with_itself_is_one_and_ar2_is_stationary():
    x = _smooth_field(3)
    x_hat = torch.fft.rfft2(x)[None]
    band = noise.octave_bands(64, 80, 4)
    assert torch.allclose(
        noise.band_correlation(x_hat, x_hat, band, 4), torch.ones(1, 4, dtype=torch.float64)
    )
    phi1, phi2, sigma = noise.ar_parameters(torch.tensor([0.9, 0.5, 0.8]),
                                            torch.tensor([0.1, 0.9, 0.7]))
    # the process the coefficients define: stationary (inside the AR(2) triangle), of unit
    # variance, and with the given correlations where those were already possible (band 3)
    assert bool(((phi1 + phi2 < 1) & (phi2 - phi1 < 1) & (phi2.abs() < 1)).all())
    r1 = phi1 / (1 - phi2)
    r2 = phi1 * r1 + phi2
    np.testing.assert_allclose((phi1 * r1 + phi2 * r2 + sigma**2).numpy(), 1.0, atol=1e-5)
    np.testing.assert_allclose([float(r1[2]), float(r2[2])], [0.8, 0.7], atol=1e-9)
    assert float(r2[1]) < float(r1[1])  # ρ2 above ρ1 is brought below it


def test_ar2_of_near_perfect_large_scales_continues_their_trend():
    # radar rain's largest scales have ρ1 ≈ 0.9996 and ρ2 ≈ 0.9985 (the field keeps moving
    # and growing the same way); ρ1 clipped at 0.999 turned that into a weighted mean of the
    # last two frames (φ1 ≈ 0.75, φ2 ≈ 0.25); the AR(2) must carry the trend on instead
    phi1, phi2, sigma = noise.ar_parameters(torch.tensor([0.9996]), torch.tensor([0.9985]))
    assert float(phi1[0]) > 1.5 and float(phi2[0]) < -0.5
    assert float(phi1[0] + phi2[0]) < 1 and float(sigma[0]) > 0
    x = [0.0, 1.0]  # a unit step, noise aside, is continued beyond the last value
    x.append(float(phi1[0]) * x[1] + float(phi2[0]) * x[0])
    assert x[2] > 1.5


def test_match_distribution_gives_the_target_values_and_keeps_the_order():
    g = torch.Generator().manual_seed(4)
    fields = torch.randn(3, 50, 60, generator=g)
    target = torch.sort(torch.randint(0, 200, (50 * 60,), generator=g).float()).values
    out = noise.match_distribution(fields, target)
    for m in range(3):
        # quantile by quantile the output is the target, within one level at bin borders
        diff = (torch.sort(out[m].reshape(-1)).values - target).abs()
        assert float(diff.max()) <= 1.0 and float(diff.mean()) < 0.1
        order = torch.argsort(fields[m].reshape(-1))
        assert bool((torch.diff(out[m].reshape(-1)[order]) >= 0).all())


def test_bps_std_matches_pysteps_defaults():
    pm = pytest.importorskip("pysteps.noise.motion")
    v = np.zeros((2, 4, 5))
    v[0] = 2.0  # eastward, 2 px per step
    pert = pm.initialize_bps(v, pixelsperkm=1.0, timestep=5, seed=0)
    eps = np.array([[pert["eps_par"], pert["eps_perp"]]])
    for t in (5.0, 30.0, 60.0):
        ours = noise.bps_velocity(eps, t, pixel_km=1.0, timestep_min=5.0)[0]
        theirs = pm.generate_bps(pert, t)  # (2, m, n): parallel is +x, perpendicular +y
        np.testing.assert_allclose(theirs[0, 0, 0], ours[0], rtol=1e-12)
        np.testing.assert_allclose(theirs[1, 0, 0], ours[1], rtol=1e-12)


def test_fast_size_is_5_smooth_and_not_smaller():
    for n in (1, 7, 71, 613, 710, 1226, 2200):
        f = noise.fast_size(n)
        assert f >= n
        while f % 2 == 0:
            f //= 2
        while f % 3 == 0:
            f //= 3
        while f % 5 == 0:
            f //= 5
        assert f == 1
