"""SpecAugment: frequency and time masks per sample, drawn from a generator so a seed repeats them."""

from __future__ import annotations

import torch


def _mask_along(
    size: int, batch: int, masks: int, width: int, generator: torch.Generator | None, device
) -> torch.Tensor:
    """(batch, size) bool: the union of ``masks`` intervals per sample, widths uniform in [0, width]."""
    if masks <= 0 or width <= 0 or size == 0:
        return torch.zeros((batch, size), dtype=torch.bool, device=device)
    gen_device = generator.device if generator is not None else torch.device("cpu")
    width = min(width, size)
    widths = torch.randint(0, width + 1, (batch, masks), generator=generator, device=gen_device)
    starts = (torch.rand((batch, masks), generator=generator, device=gen_device) * (size - widths + 1)).long()
    starts = torch.minimum(starts, size - widths)  # rand() < 1, but keep the bound exact
    widths, starts = widths.to(device), starts.to(device)
    index = torch.arange(size, device=device)
    inside = (index >= starts[..., None]) & (index < (starts + widths)[..., None])  # (batch, masks, size)
    return inside.any(dim=1)


def spec_augment(
    x: torch.Tensor,
    freq_masks: int = 2,
    freq_width: int = 48,
    time_masks: int = 2,
    time_width: int = 160,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """SpecAugment per sample (reference policy, no time warp) on (B, T, F); returns a new tensor.

    Each sample gets its own ``freq_masks`` frequency and ``time_masks`` time masks; each width is drawn
    uniformly from [0, width] (integers, clipped to the axis), each start uniformly where the mask fits.
    Masked cells take the sample's own spectrogram mean. Random numbers come from ``generator`` (or
    torch's global CPU generator) on the generator's device, so a seed gives the same masks on CPU and
    GPU inputs.
    """
    if x.ndim == 2:
        return spec_augment(x.unsqueeze(0), freq_masks, freq_width, time_masks, time_width, generator)[0]
    if x.ndim != 3:
        raise ValueError(f"spec_augment expects (batch, time, freq), got shape {tuple(x.shape)}")
    batch, frames, bins = x.shape
    freq = _mask_along(bins, batch, freq_masks, freq_width, generator, x.device)
    time_ = _mask_along(frames, batch, time_masks, time_width, generator, x.device)
    mask = time_[:, :, None] | freq[:, None, :]
    mean = x.mean(dim=(1, 2), keepdim=True)
    return torch.where(mask, mean.to(x.dtype), x)


