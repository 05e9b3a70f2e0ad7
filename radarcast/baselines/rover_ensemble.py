"""ROVER ensembles: members from perturbed motion and a STEPS-like stochastic field.

Each member is built, one lead at a time, as follows (docs/ensembles.md):

1. the latest frame z (pixels, linear in dBZ; dry and missing set to the rain threshold,
   0.1 mm/h through the Z–R relation, or ``dry_db`` below it) is evolved in the Lagrangian
   frame by per-mode AR(2) (or AR(1)) processes whose coefficients come from the
   motion-compensated lag-1/lag-2 correlations of the last three frames in octave bands,
   with spectral noise whose amplitude is the observed field's
   (:class:`radarcast.kernels.noise.SpectralAR`);
2. the member field is CDF-matched to the latest frame's values (rain area and intensity
   distribution kept, as STEPS' probability matching);
3. it is moved along the member's trajectory: ROVER's motion plus a Bowler et al. (2006)
   perturbation parallel and perpendicular to it, growing with lead time (``bps``), with
   area-preserving sampling of the rain (:func:`_warp_rain`).

Members are generated in chunks (all leads of a chunk streamed one lead at a time), so
memory is bounded by the chunk, not by the ensemble: see
:func:`~radarcast.baselines.ensemble_config.member_chunk`. This module holds the member
stream (trajectories, a window's shared statistics, the rain warp, :func:`stream_members`,
:func:`stream_centred`, :func:`stream_window`, :func:`forecast_window`); the settings and
sizing (:class:`~radarcast.baselines.ensemble_config.EnsembleConfig`, chunk size, rain
levels) live in :mod:`radarcast.baselines.ensemble_config`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from radarcast.baselines.ensemble_config import (
    EnsembleConfig,
    mask_radius,
    member_chunk,
    rain_levels,
)
from radarcast.kernels import noise
from radarcast.kernels.sampling import base_grid, sample, torch_module


# ---------------------------------------------------------------------- geometry
class _Trajectories:
    """Departure points of the coarse flow cells for a chunk of members, one step at a time,
    along ROVER's flow plus each member's bps perturbation; :meth:`warp` moves fields."""

    def __init__(self, flow, step_scale: int, eps, cfg: EnsembleConfig) -> None:
        torch = torch_module()
        self.flow, self.s, self.eps, self.cfg = flow, step_scale, eps, cfg  # flow (1, 2, h, w)
        h, w = flow.shape[-2:]
        self.extent = (h * step_scale, w * step_scale)
        speed = torch.sqrt((flow**2).sum(dim=1, keepdim=True))
        unit = torch.where(speed > 1e-6, flow / torch.clamp(speed, min=1e-6), 0.0)
        perp = torch.stack([-unit[:, 1], unit[:, 0]], dim=1)
        self.fields = torch.cat([flow, unit, perp], dim=1)  # (1, 6, h, w)
        m = len(eps)
        self.centres = (base_grid(h, w, flow.device) + 0.5) * step_scale - 0.5
        self.pos = self.centres.expand(m, -1, -1, -1).clone()  # (m, h, w, 2)
        self.base = self.base_cf = None  # normalised pixel grid, made on first use

    def advance(self, lead: int) -> None:
        torch = torch_module()
        m = self.pos.shape[0]
        fields = self.fields.expand(m, -1, -1, -1)
        f = sample(fields, self.pos, self.extent, padding="border")  # (m, 6, h, w)
        vel = f[:, :2]
        if self.cfg.motion == "bps":
            t_min = lead * self.cfg.timestep_min
            a = noise.bps_velocity(self.eps, t_min, self.cfg.pixel_km, self.cfg.timestep_min)
            a = torch.as_tensor(a, dtype=vel.dtype, device=vel.device)[:, :, None, None, None]
            vel = vel + a[:, 0] * f[:, 2:4] + a[:, 1] * f[:, 4:6]
        self.pos = self.pos - vel.permute(0, 2, 3, 1)

    def warp(self, fields, reference=None):
        """Sample fields (m, H, W) or (m, C, H, W) at every pixel's departure point → the
        same shape; what comes from outside the grid is 0 (dry). With ``reference``
        (1, h, w, 2) departure points of another trajectory, only the difference is applied
        (the perturbation alone)."""
        torch = torch_module()
        fn = torch.nn.functional
        img = fields.unsqueeze(1) if fields.dim() == 3 else fields  # (m, C, H, W)
        m, _, h, w = img.shape
        hp, wp = self.extent
        to_norm = torch.tensor([2.0 / wp, 2.0 / hp], device=fields.device)
        origin = self.centres if reference is None else reference
        disp = (self.pos - origin) * to_norm  # (m, h', w', 2) in grid units
        if self.base is None:
            self.base = (base_grid(hp, wp, fields.device) + 0.5) * to_norm - 1.0
            self.base_cf = self.base.permute(0, 3, 1, 2).contiguous()  # (1, 2, H', W')
        if self.s > 1:  # upsampled channels-first (half the time of channels-last), same values
            grid = fn.interpolate(
                disp.permute(0, 3, 1, 2).contiguous(), scale_factor=self.s, mode="bilinear",
                align_corners=False,
            )  # fmt: skip
            grid = grid.add_(self.base_cf).permute(0, 2, 3, 1)
        else:
            grid = disp + self.base
        if (hp, wp) != (h, w):
            img = fn.pad(img, (0, wp - w, 0, hp - h))
        out = fn.grid_sample(img, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return out[:, 0, :h, :w] if fields.dim() == 3 else out[..., :h, :w]


# ---------------------------------------------------------------------- members
@dataclass
class _Window:
    """What every member of one window shares: spectra, AR coefficients, target values."""

    x0_hat: object
    x1_hat: object
    phi1: object
    phi2: object
    sigma: object
    band: object
    amplitude: object
    mean: float
    target: object  # (n,) ascending pixel values of the latest frame
    rain: object  # (1, H, W) bool: the latest frame's rain area (values in target > 0)
    zero: float  # pixel value of dry pixels in the evolved field
    flow: object  # (1, 2, h, w)
    rho1: object  # (n_bands,) lag-1 correlation per band


def _prepare(x, flow, step_scale: int, cfg: EnsembleConfig, floor: float,
             zero: float | None = None) -> _Window:  # fmt: skip
    """Spectral statistics of one window's inputs x (T, H, W) torch pixels, NaN = missing.

    Values below ``floor`` (and NaN) enter as ``zero`` (default: ``floor``). The fields
    are padded with ``zero`` to FFT-friendly sizes (:func:`fast_size`); the members are
    cropped back to (H, W).
    """
    from radarcast.kernels.advect import advect

    torch = torch_module()
    h, w = x.shape[-2:]
    hp, wp = noise.fast_size(h), noise.fast_size(w)
    zero = floor if zero is None else float(zero)
    z = torch.nan_to_num(x, nan=0.0)
    z = torch.where(z >= floor, z, torch.full_like(z, zero))  # (T, H, W)
    lags = min(cfg.order, x.shape[0] - 1)
    # earlier frames moved forward to the latest one's position (motion-compensated); what
    # flowed in from outside the grid is unknown, so it takes the latest frame's values there
    # (no change): filled with 0 or the dry value it is an edge the latest frame does not
    # have, which decorrelates the small scales of the whole window
    moved = [advect(z[-1 - k][None], flow, k, step_scale, outside="nan")[0, -1]
             for k in range(1, lags + 1)]  # fmt: skip
    moved = [torch.where(torch.isfinite(m), m, z[-1]) for m in moved]
    mean = float(z[-1].mean())

    def spectrum(f):
        return torch.fft.rfft2(
            torch.nn.functional.pad(f - mean, (0, wp - w, 0, hp - h), value=zero - mean)
        )

    hats = [spectrum(f) for f in [z[-1], *moved]]
    band = noise.octave_bands(hp, wp, cfg.bands, device=x.device)
    rho = [noise.band_correlation(hats[0][None], b[None], band, cfg.bands)[0] for b in hats[1:]]
    phi1, phi2, sigma = noise.ar_parameters(rho[0], rho[1] if len(rho) > 1 else None)
    sigma = sigma * cfg.noise_gain
    if cfg.spectrum == "observed":
        amplitude = hats[0].abs()
    else:
        amplitude = noise.radial_amplitude(hats[0][None], wp)[0]
    last = torch.nan_to_num(x[-1], nan=0.0).reshape(-1)
    target = torch.sort(torch.where(last >= floor, last, torch.zeros_like(last))).values
    x1 = hats[1] if len(hats) > 1 else None
    rain = (last.reshape(1, h, w) >= floor) & (last.reshape(1, h, w) > 0)
    return _Window(hats[0], x1, phi1, phi2, sigma, band, amplitude, mean, target, rain, zero,
                   flow, rho[0])  # fmt: skip


def _warp_rain(paths: _Trajectories, field, floor: float, reference=None):
    """Move CDF-matched member fields (0 = dry, rain ≥ floor) along their trajectories.

    Rain and its indicator are sampled together (bilinear); a pixel is rain where the
    interpolated indicator is ≥ ½ and then takes the rain-weighted mean of its
    neighbours, Σ wᵢ fᵢ / Σ wᵢ over the rain ones. Sampling the field alone, with dry
    pixels at 0 (tens of dBZ below the threshold), a rain edge pixel needed ~90 % rain
    weight to stay rain: every lead ate about a pixel of every rain edge (members 15 %
    drier than the truth at lead 1 on FMI). Inflow from outside the grid stays dry.
    """
    torch = torch_module()
    m, h, w = field.shape
    hp, wp = paths.extent  # made at the flow grid's size: warp needs no padded copy
    img = torch.empty((m, 2, hp, wp), dtype=field.dtype, device=field.device)
    img[:, :, h:] = 0.0
    img[:, :, :h, w:] = 0.0
    img[:, 0, :h, :w] = field  # dry pixels are 0 already: the field is its own rain values
    torch.gt(field, 0, out=img[:, 1, :h, :w])
    out = paths.warp(img, reference)[..., :h, :w]  # (m, 2, H, W)
    num, den = out[:, 0], out[:, 1]
    rain = den >= 0.5
    return num.div_(den.clamp_(min=0.5)).mul_(rain)


def stream_members(
    x,
    flow,
    step_scale: int,
    n_steps: int,
    cfg: EnsembleConfig,
    floor: float,
    window_seed: int,
    zero: float | None = None,
):
    """Yield (first member, lead index, (m, H, W) float32 torch pixels) for one window.

    Parameters
    ----------
    x
        (T, H, W) torch pixels of one window's inputs, NaN = missing, T ≥ 2.
    flow
        (1, 2, h, w) ROVER motion on its working grid (pixels per step), covering
        (h·step_scale, w·step_scale) pixels.
    n_steps
        Leads.
    floor
        Pixel value of ``cfg.rain_dbz``.
    window_seed
        Distinguishes windows: members depend on (cfg.seed, window_seed) only.
    zero
        Pixel value of dry pixels in the evolved field
        (:func:`~radarcast.baselines.ensemble_config.rain_levels`); None: floor.
    """
    torch = torch_module()
    h, w = x.shape[-2:]
    win = _prepare(x, flow, step_scale, cfg, floor, zero)
    chunk = member_chunk(cfg, h, w)
    for m0 in range(0, cfg.members, chunk):
        m = min(chunk, cfg.members - m0)
        seeds = np.random.SeedSequence([cfg.seed, window_seed, m0])
        rng = np.random.default_rng(seeds)
        gen = torch.Generator(device=x.device)
        gen.manual_seed(int(rng.integers(2**62)))
        ar = noise.SpectralAR(
            win.x0_hat,
            win.x1_hat if cfg.order == 2 else None,
            win.phi1,
            win.phi2 if cfg.order == 2 else torch.zeros_like(win.phi2),
            win.sigma,
            win.band,
            win.amplitude,
            m,
            noise.fast_size(w),
            gen,
        )
        paths = _Trajectories(win.flow, step_scale, noise.bps_draw(m, rng), cfg)
        rain = win.rain.expand(m, -1, -1)
        for lead in range(n_steps):
            field = ar.step()[:, :h, :w] + win.mean  # (m, H, W) Lagrangian member fields
            if cfg.mask == "incremental":
                radius = mask_radius(cfg)
                field = noise.apply_mask(field, noise.dilated_mask(rain, radius, cfg.mask_rim))
            field = noise.match_distribution(field, win.target)
            rain = field > 0
            paths.advance(lead + 1)
            yield m0, lead, _warp_rain(paths, field, floor)


def stream_centred(centre, x, flow, step_scale: int, cfg: EnsembleConfig, floor: float,
                   window_seed: int, zero: float | None = None):  # fmt: skip
    """Like :func:`stream_members`, but around a given forecast ``centre`` (n, H, W) torch
    pixels (e.g. a trained model's) instead of the extrapolated latest frame.

    Lead t of a member is r_t·ĉ_t + sqrt(1 − r_t²)·A·N_t per mode: ĉ_t the centre's rfft2,
    r_t = ρ1^t the band's lag-1 correlation (from the observed frames) to the power t, A the
    observed amplitude and N_t unit AR(1) noise with coefficient ρ1; it is CDF-matched to
    the centre's own values at that lead and moved by the member's bps perturbation alone
    (its trajectory minus the unperturbed one), since the centre already moves the rain.
    """
    torch = torch_module()
    h, w = x.shape[-2:]
    hp, wp = noise.fast_size(h), noise.fast_size(w)
    zero = floor if zero is None else float(zero)
    win = _prepare(x, flow, step_scale, cfg, floor, zero)
    rho = torch.clamp(win.rho1, 0.0, noise.MAX_RHO).to(torch.float32)[win.band]  # (hp, wr)
    keep = torch.sqrt(1.0 - rho**2)
    chunk = member_chunk(cfg, h, w)
    still = _Trajectories(flow, step_scale, np.zeros((1, 2)), cfg)
    refs = []
    for lead in range(centre.shape[0]):
        still.advance(lead + 1)
        refs.append(still.pos)
    for m0 in range(0, cfg.members, chunk):
        m = min(chunk, cfg.members - m0)
        rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, window_seed, m0, 1]))
        gen = torch.Generator(device=x.device)
        gen.manual_seed(int(rng.integers(2**62)))
        paths = _Trajectories(flow, step_scale, noise.bps_draw(m, rng), cfg)
        state = noise.complex_noise(m, hp, wp, gen, x.device)
        r = torch.ones_like(rho)
        for lead in range(centre.shape[0]):
            c = torch.nan_to_num(centre[lead], nan=0.0)
            c = torch.where(c >= floor, c, torch.full_like(c, zero))
            mean = float(c.mean())
            c_hat = torch.fft.rfft2(
                torch.nn.functional.pad(c - mean, (0, wp - w, 0, hp - h), value=zero - mean)
            )
            if lead:
                eps = noise.complex_noise(m, hp, wp, gen, x.device)
                state = state * rho + eps * keep
            r = r * rho
            spec = c_hat * r + state * (torch.sqrt(1.0 - r**2) * win.amplitude)
            field = torch.fft.irfft2(spec, s=(hp, wp))[:, :h, :w] + mean
            raw = torch.nan_to_num(centre[lead], nan=0.0).reshape(-1)
            target = torch.sort(torch.where(raw >= floor, raw, torch.zeros_like(raw))).values
            field = noise.match_distribution(field, target)
            paths.advance(lead + 1)
            yield m0, lead, _warp_rain(paths, field, floor, refs[lead])


def forecast_window(
    x,
    n_steps: int,
    cfg: EnsembleConfig,
    rover_cfg=None,
    units=None,
    window_seed: int = 0,
    device=None,
) -> np.ndarray:
    """Whole ensemble of one window as (M, n_steps, H, W) float32 numpy pixels.

    ``x`` (T, H, W) pixels, NaN = missing; ROVER's motion from ``rover_cfg``. For large
    grids stream with :func:`stream_members` instead.
    """
    h, w = np.shape(x)[-2:]
    out = np.empty((cfg.members, n_steps, h, w), np.float32)
    for m0, lead, frames in stream_window(x, n_steps, cfg, rover_cfg, units, window_seed, device):
        out[m0 : m0 + len(frames), lead] = frames
    return out


def stream_window(x, n_steps: int, cfg: EnsembleConfig, rover_cfg=None, units=None,
                  window_seed: int = 0, device=None):  # fmt: skip
    """ROVER's motion from ``x`` (T, H, W) pixels, then :func:`stream_members` as numpy:
    yields (first member, lead index, (m, H, W) float32 pixels)."""
    torch = torch_module()
    from radarcast.kernels.flow import RoverConfig, motion_coarse, pixel_scale

    rc = rover_cfg or RoverConfig()
    t = torch.as_tensor(np.asarray(x, dtype=np.float32), device=device)
    gain, offset = pixel_scale(units)
    with torch.no_grad():
        flow = motion_coarse(t[None], rc, gain, offset)
        floor, zero = rain_levels(units, cfg)
        for m0, lead, frames in stream_members(t, flow, rc.downsample, n_steps, cfg, floor,
                                               window_seed, zero):  # fmt: skip
            yield m0, lead, frames.cpu().numpy()
