"""Stochastic perturbations for ensemble nowcasts, in torch (CPU and CUDA, batched over members).

Three pieces, each usable alone:

- **Scale-dependent spectral AR processes** (:class:`SpectralAR`). The field's Fourier
  transform X(k) is evolved mode by mode, X_t = φ1 X_{t−1} + φ2 X_{t−2} + σ_e A(k) ε_t,
  with complex white noise ε and an amplitude A(k) that is the observed field's (so the
  perturbations' power spectrum follows the observed one). The AR coefficients depend on
  the mode's wavelength through octave bands (a cascade whose every level is one octave,
  as in STEPS: Bowler et al. 2006, Seed 2003), estimated from the lag-1 (and lag-2)
  correlation of consecutive, motion-compensated frames in that band. Small scales
  decorrelate in a few steps, large ones persist: the ensemble spreads as the lead grows
  and the ensemble mean loses the unpredictable small scales.
- **CDF matching** (:func:`match_distribution`): each member field takes the observed
  field's distribution of values (rank-preserving), as pysteps' ``probmatching_method='cdf'``.
- **Motion perturbations** (:func:`bps_velocity`): Bowler, Pierce & Seed (2006)'s constant-
  direction perturbations parallel and perpendicular to the motion, standard deviation
  a·t^b + c km/h at lead t minutes, with their published parameters (as pysteps'
  ``noise.motion.initialize_bps``; Laplace-distributed amplitudes of unit variance).

References: Bowler, N. E., Pierce, C. E. & Seed, A. W. (2006), STEPS: a probabilistic
precipitation forecasting scheme which merges an extrapolation nowcast with downscaled NWP,
Q. J. R. Meteorol. Soc. 132, 2127–2155. Seed, A. W., Pierce, C. E. & Norman, K. (2013),
Formulation and evaluation of a scale decomposition-based stochastic precipitation nowcast
scheme, Water Resour. Res. 49, 6624–6641. Pulkkinen, S. et al. (2019), Pysteps (v1.0),
Geosci. Model Dev. 12, 4185–4219.
"""

from __future__ import annotations

import math

import numpy as np

BPS_PAR = (10.88, 0.23, -7.68)
"""Bowler et al. (2006) a, b, c of the parallel component's std a·t^b + c (km/h, t in min)."""
BPS_PERP = (5.76, 0.31, -2.72)
"""Bowler et al. (2006) a, b, c of the perpendicular component's std (km/h, t in min)."""
MAX_RHO = 0.999  # AR(1): a band whose frames agree perfectly still gets a little noise
MAX_RHO1_AR2 = 1.0 - 1e-5
"""Lag-1 clip of an AR(2) band. Not 0.999: the largest scales of radar rain reach ρ1 ≥ 0.999,
and clipping ρ1 and ρ2 both at 0.999 made ρ2 = ρ1, i.e. φ1 = φ2 = ½ — a lagged average of the
last two frames where the field has a trend that φ1 > 1, φ2 < 0 carries on (on the five
windows of bench/ensemble_speed.py, all else equal: CRPS 1.4 % lower on MeteoSwiss, 1.6 % on
FMI than with the 0.999 clip)."""


def _torch():
    import torch

    return torch


# ---------------------------------------------------------------------- spectral geometry
def fast_size(n: int) -> int:
    """The smallest 2^a·3^b·5^c ≥ n: FFTs of such lengths are several times faster than of
    lengths with a large prime factor (MeteoSwiss' 710 = 2·5·71, FMI's 1226 = 2·613)."""
    best = 1 << max(n - 1, 0).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            p = p35
            while p < n:
                p *= 2
            best = min(best, p)
            p35 *= 3
        p5 *= 5
    return best


def octave_bands(h: int, w: int, n_bands: int, device=None):
    """Band index (h, w//2+1) int64 of every rfft2 mode: band j holds wavelengths in
    (L/2^(j+1), L/2^j] pixels with L = max(h, w); the mean (k = 0) is band 0 and every
    wavelength shorter than L/2^(n_bands−1) is in the last band."""
    torch = _torch()
    fy = torch.fft.fftfreq(h, device=device).abs()
    fx = torch.fft.rfftfreq(w, device=device)
    k = torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2) * max(h, w)  # cycles per domain
    band = torch.floor(torch.log2(torch.clamp(k, min=1.0)))
    return torch.clamp(band, 0, n_bands - 1).long()


def _band_sums(values, band, n_bands: int):
    """Sum of (B, h, wr) real ``values`` over each band → (B, n_bands) float64."""
    torch = _torch()
    b = values.shape[0]
    out = torch.zeros(b, n_bands, dtype=torch.float64, device=values.device)
    idx = band.reshape(1, -1).expand(b, -1)
    return out.scatter_add_(1, idx, values.reshape(b, -1).double())


def band_correlation(a_hat, b_hat, band, n_bands: int):
    """Correlation of two fields within each band, from their rfft2 (B, h, wr) complex.

    Returns (B, n_bands) float64: Re Σ A·conj(B) / sqrt(Σ|A|² Σ|B|²) over the band's
    modes (the mean excluded), i.e. the Pearson correlation of the band-pass filtered
    fields; 0 where a band is empty or flat.
    """
    torch = _torch()
    weight = torch.ones(band.shape, device=band.device)
    weight[0, 0] = 0.0  # the mean carries no scale information
    cross = _band_sums((a_hat * b_hat.conj()).real * weight, band, n_bands)
    pa = _band_sums(a_hat.abs() ** 2 * weight, band, n_bands)
    pb = _band_sums(b_hat.abs() ** 2 * weight, band, n_bands)
    den = torch.sqrt(pa * pb)
    return torch.where(den > 0, cross / torch.clamp(den, min=1e-300), torch.zeros_like(den))


def ar_parameters(rho1, rho2=None):
    """AR(1) or AR(2) coefficients of unit-variance processes from lag correlations.

    Parameters
    ----------
    rho1, rho2
        (..., n_bands) lag-1 and (for AR(2)) lag-2 correlations; rho1 is clipped to
        [0, MAX_RHO] for AR(1), [0, MAX_RHO1_AR2] for AR(2), and rho2 moved into the range
        where the AR(2) is stationary and its two lags differ.

    Returns
    -------
    phi1, phi2, sigma : (..., n_bands) float64
        X_t = φ1 X_{t−1} + φ2 X_{t−2} + σ ε_t keeps a unit variance (Yule–Walker; φ2 = 0
        for AR(1), σ = sqrt(1 − φ1²)).
    """
    torch = _torch()
    if rho2 is None:
        r1 = torch.clamp(torch.as_tensor(rho1, dtype=torch.float64), 0.0, MAX_RHO)
        return r1, torch.zeros_like(r1), torch.sqrt(1.0 - r1**2)
    r1 = torch.clamp(torch.as_tensor(rho1, dtype=torch.float64), 0.0, MAX_RHO1_AR2)
    r2 = torch.as_tensor(rho2, dtype=torch.float64, device=r1.device)
    # ρ2 kept where Yule–Walker gives a stationary AR(2): the adjustment of pysteps'
    # timeseries.autoregression.adjust_lag2_corrcoef2 (Pulkkinen et al. 2019), then below ρ1
    # (ρ2 = ρ1 would make the two lags one) and above the bound 2ρ1² − 1
    r2 = torch.maximum(r2, 2.0 * r1 * r2 - 1.0)
    lower = (3.0 * r1**2 - 2.0 + 2.0 * (1.0 - r1**2) ** 1.5) / torch.clamp(r1**2, min=1e-300)
    r2 = torch.maximum(r2, torch.where(r1 > 0, lower, torch.full_like(r1, -1.0)))
    r2 = torch.minimum(r2, r1 - 1e-7)
    r2 = torch.minimum(torch.maximum(r2, 2.0 * r1**2 - 1.0 + 1e-6),
                       torch.full_like(r2, MAX_RHO1_AR2))
    phi1 = r1 * (1.0 - r2) / (1.0 - r1**2)
    phi2 = (r2 - r1**2) / (1.0 - r1**2)
    var = torch.clamp(1.0 - phi1 * r1 - phi2 * r2, min=1e-6)
    return phi1, phi2, torch.sqrt(var)


def radial_amplitude(x_hat, width: int):
    """Isotropic amplitude (B, h, wr): sqrt of the mean |X|² over each integer-wavenumber
    ring of ``x_hat`` (B, h, wr), the rfft2 of a field ``width`` pixels wide — the radially
    averaged power spectrum, a smoother filter than the observed 2-D amplitude |X|."""
    torch = _torch()
    b, h, wr = x_hat.shape
    w = width
    fy = torch.fft.fftfreq(h, device=x_hat.device) * h
    fx = torch.fft.rfftfreq(w, device=x_hat.device) * w
    ring = torch.round(torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)).long()
    n = int(ring.max()) + 1
    power = _band_sums(x_hat.abs() ** 2, ring, n)
    count = _band_sums(torch.ones(1, h, wr, device=x_hat.device), ring, n)
    mean = power / torch.clamp(count, min=1.0)
    return torch.sqrt(mean.float()).gather(1, ring.reshape(1, -1).expand(b, -1)).view(b, h, wr)


# ---------------------------------------------------------------------- noise and AR
def complex_noise(members: int, h: int, w: int, generator=None, device=None):
    """White noise in rfft2 layout (members, h, w//2+1) complex64 with E|ε|² = 1 per mode.

    Drawn directly in the spectral domain (one inverse FFT per field instead of two FFTs).
    The two self-conjugate columns (kx = 0 and, for even w, the Nyquist one) lose half
    their variance when irfft2 projects them onto Hermitian symmetry, so they get √2.
    """
    torch = _torch()
    wr = w // 2 + 1
    eps = torch.randn(members, h, wr, generator=generator, device=device, dtype=torch.complex64)
    eps[..., 0] *= math.sqrt(2.0)
    if w % 2 == 0:
        eps[..., -1] *= math.sqrt(2.0)
    return eps


class SpectralAR:
    """Members of a field evolved by per-mode AR(1)/AR(2) processes with spectral noise.

    Parameters
    ----------
    x0_hat
        (h, wr) complex: rfft2 of the latest field minus its mean (the members' start).
    x1_hat
        (h, wr) complex: rfft2 of the previous field moved to the latest one's position
        (motion-compensated), for AR(2); None for AR(1).
    phi1, phi2, sigma
        (n_bands,) coefficients from :func:`ar_parameters`.
    band
        (h, wr) band index of every mode (:func:`octave_bands`).
    amplitude
        (h, wr) real noise amplitude per mode: |x0_hat| or :func:`radial_amplitude`.
    members, width
        Ensemble size and the field's width w (wr = w//2 + 1).
    generator
        torch.Generator on the same device, for reproducible members.

    :meth:`step` returns the next lead's members (members, h, w) float32, real space, with
    zero mean: the ensemble mean at lead t is φ-damped x0 (for AR(1), φ^t · x0 per band) and
    every member's expected power spectrum stays the observed one.
    """

    def __init__(
        self,
        x0_hat,
        x1_hat,
        phi1,
        phi2,
        sigma,
        band,
        amplitude,
        members: int,
        width: int,
        generator=None,
    ) -> None:
        torch = _torch()
        c = x0_hat.real.dtype
        self.phi1 = phi1.to(c)[band]  # (h, wr)
        self.phi2 = phi2.to(c)[band]
        self.scale = (sigma.to(c)[band] * amplitude).to(c)
        self.width, self.members, self.generator = width, members, generator
        self.cur = x0_hat.unsqueeze(0).expand(members, -1, -1).clone()  # (M, h, wr)
        self.prev = None
        if x1_hat is not None and bool(torch.any(self.phi2 != 0)):
            self.prev = x1_hat.unsqueeze(0).expand(members, -1, -1).clone()

    def step(self):
        torch = _torch()
        h, wr = self.cur.shape[-2:]
        eps = complex_noise(self.members, h, self.width, self.generator, self.cur.device)
        nxt = eps.mul_(self.scale)  # the noise term, in place
        nxt.addcmul_(self.cur, self.phi1)
        if self.prev is not None:
            nxt.addcmul_(self.prev, self.phi2)
            self.prev = self.cur
        self.cur = nxt
        return torch.fft.irfft2(nxt, s=(h, self.width))


# ---------------------------------------------------------------------- precipitation mask
def _dilate_cross(x):
    """One binary dilation of (M, H, W) uint8 ``x`` by the 3×3 cross (4-neighbourhood)."""
    torch = _torch()
    y = x.clone()
    torch.maximum(y[:, 1:], x[:, :-1], out=y[:, 1:])
    torch.maximum(y[:, :-1], x[:, 1:], out=y[:, :-1])
    torch.maximum(y[:, :, 1:], x[:, :, :-1], out=y[:, :, 1:])
    torch.maximum(y[:, :, :-1], x[:, :, 1:], out=y[:, :, :-1])
    return y


def dilated_mask(rain, radius: int, rim: int):
    """Weights in [0, 1] (M, H, W) float32 around the boolean rain areas ``rain`` (M, H, W).

    1 within ``radius`` steps of the 4-neighbourhood of rain (an L1 ball, the structuring
    element pysteps builds with ``iterate_structure``), then a grey rim falling linearly
    over ``rim`` more steps to 0: pysteps' ``compute_dilated_mask``, the mask of STEPS'
    ``mask_method='incremental'``. Cost: radius + rim uint8 dilations.
    """
    torch = _torch()
    cur = rain.to(torch.uint8)
    for _ in range(radius):
        cur = _dilate_cross(cur)
    total = cur.clone()
    for _ in range(rim):
        cur = _dilate_cross(cur)
        total += cur
    return total.to(torch.float32) / float(rim + 1)


def apply_mask(fields, weights):
    """Squeeze every field (M, H, W) towards its own minimum outside ``weights`` (M, H, W):
    f_min + (f − f_min)·w, as STEPS does before probability matching, so that the matched
    rain can only fall where the weights are > 0 and prefers where they are 1."""
    lo = fields.amin(dim=(1, 2), keepdim=True)
    return fields.sub_(lo).mul_(weights).add_(lo)


# ---------------------------------------------------------------------- CDF matching
def match_distribution(fields, target_sorted, bins: int = 4096):
    """Give every field the distribution of ``target_sorted``, keeping each pixel's rank.

    Parameters
    ----------
    fields
        (M, H, W) float32 torch, finite.
    target_sorted
        (n,) float32 torch, ascending: the values to reproduce (e.g. the observed frame's).
    bins
        Histogram bins per field: pixels are ranked by the bin they fall in, and each bin
        takes the target value at the quantile of its centre (one gather per pixel, no
        sort). Pixels that share a bin share a value; with 4096 bins over the field's
        range that is finer than the 0–255 levels the output is stored in.

    Returns
    -------
    (M, H, W) float32: the target's value at each pixel's quantile (pysteps' 'cdf'
    probability matching, up to the binning).
    """
    torch = _torch()
    m = fields.shape[0]
    flat = fields.reshape(m, -1)
    n = flat.shape[1]
    lo = flat.amin(dim=1, keepdim=True)
    hi = flat.amax(dim=1, keepdim=True)
    scale = bins / torch.clamp(hi - lo, min=1e-12)
    idx = ((flat - lo) * scale).to(torch.int64).clamp_(0, bins - 1)  # (M, n) bin of each pixel
    idx += (torch.arange(m, device=flat.device) * bins).unsqueeze(1)
    counts = torch.bincount(idx.view(-1), minlength=m * bins).view(m, bins).to(flat.dtype)
    centre_q = (torch.cumsum(counts, dim=1) - 0.5 * counts) / n  # quantile of bin centres
    k = len(target_sorted)
    j = torch.clamp((centre_q * (k - 1)).round().long(), 0, k - 1)
    lut = target_sorted[j].reshape(-1)  # (M·bins,) value of every bin
    return lut[idx].view_as(fields)


# ---------------------------------------------------------------------- motion perturbations
def bps_std(t_min, params=BPS_PAR) -> np.ndarray:
    """Std a·t^b + c (km/h) of a bps motion perturbation at lead ``t_min`` minutes (> 0)."""
    a, b, c = params
    return a * np.power(np.asarray(t_min, dtype=np.float64), b) + c


def bps_draw(members: int, rng: np.random.Generator) -> np.ndarray:
    """(members, 2) Laplace amplitudes of unit variance (parallel, perpendicular)."""
    return rng.laplace(scale=1.0 / math.sqrt(2.0), size=(members, 2))


def bps_velocity(
    eps: np.ndarray, t_min: float, pixel_km: float, timestep_min: float, par=BPS_PAR, perp=BPS_PERP
) -> np.ndarray:
    """(members, 2) perturbation speeds in pixels per time step at lead ``t_min`` minutes.

    Column 0 is along the local motion direction, column 1 perpendicular to it (90°
    anticlockwise in (x, y)); multiply by the unit motion vectors to get the field. km/h →
    pixels per step: × timestep_min / 60 / pixel_km.
    """
    g = np.array([bps_std(t_min, par), bps_std(t_min, perp)])
    return eps * g[None, :] * (timestep_min / 60.0) / pixel_km
