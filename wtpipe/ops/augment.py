"""The pixel work of planned views (``wtpipe.data.transforms.plan``), batched on any device.

Each step reproduces torchvision's v2 kernel on uint8 images (the loader path), with one
parameter per view instead of one per call: resized crop, flip, colour jitter in each view's
own order (brightness and contrast and saturation as blends truncated to uint8, hue through
HSV), greyscale, Gaussian blur (torchvision's kernel, reflect padding, rounded), solarisation,
then scaling to [0, 1] and normalisation. The parameters stay on the host (choosing which views
an operation touches needs no device sync); only pixels live on the device.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as nnf
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # ImageNet statistics, as DINO normalises
FIELDS = (
    "top",
    "left",
    "height",
    "width",
    "size",
    "flip",
    "jitter",
    "order0",
    "order1",
    "order2",
    "order3",
    "brightness",
    "contrast",
    "saturation",
    "hue",
    "gray",
    "blur",
    "sigma",
    "kernel",
    "solarize",
    "threshold",
    "bilinear",
)
F = {name: i for i, name in enumerate(FIELDS)}  # the column of each parameter in a plan row
GRAY_WEIGHTS = (0.2989, 0.587, 0.114)


def _factor(values: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Per-view factors as float32 (n, 1, 1, 1), as torchvision's float scalars meet a float32 image."""
    return values.to(torch.float32).view(-1, 1, 1, 1).to(device, non_blocking=True)


def _gray(x: torch.Tensor) -> torch.Tensor:
    """Luma of uint8 images (n, 3, H, W) as float32 (n, 1, H, W), accumulated as torchvision does."""
    r, g, b = x.unbind(dim=1)
    return (
        r.mul(GRAY_WEIGHTS[0])
        .add_(g, alpha=GRAY_WEIGHTS[1])
        .add_(b, alpha=GRAY_WEIGHTS[2])
        .unsqueeze(1)
    )


def _blend(x: torch.Tensor, other: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
    """``ratio * x + (1 - ratio) * other`` clamped and truncated to uint8 (``1 - ratio`` taken in
    double precision, as torchvision's ``alpha``)."""
    mixed = torch.addcmul(
        x * _factor(ratio, x.device), other, _factor(1.0 - ratio.to(torch.float64), x.device)
    )
    return mixed.clamp_(0, 255).to(torch.uint8)  # addcmul: one rounding, as add_(alpha=) on CPU


def brightness(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return (x * _factor(factor, x.device)).clamp_(0, 255).to(torch.uint8)


def contrast(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    mean = _gray(x).floor_().mean(dim=(-3, -2, -1), keepdim=True)
    return _blend(x, mean, factor)


def saturation(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return _blend(x, _gray(x).floor_(), factor)


def _rgb_to_hsv(rgb: torch.Tensor) -> torch.Tensor:
    """Float RGB in [0, 1] (n, 3, H, W) -> HSV, hue in [0, 1). Hue and saturation are 0 where the
    channels are equal. The arithmetic follows PIL's (and torchvision's) order: each channel's
    distance from the maximum over the spread, combined per sextant, times 1/6."""
    low, high = rgb.aminmax(dim=1)
    flat = high == low
    spread = high - low
    ones = torch.ones_like(high)
    saturation = spread / torch.where(flat, ones, high)
    r, g, b = ((high.unsqueeze(1) - rgb) / torch.where(flat, ones, spread).unsqueeze(1)).unbind(
        dim=1
    )
    red, green = high == rgb[:, 0], high == rgb[:, 1]
    hue = torch.where(red, b - g, torch.where(green, 2.0 + r - b, 4.0 + g - r))
    hue = torch.where(flat, torch.zeros_like(hue), hue)
    return torch.stack((hue.mul(1.0 / 6.0).add(1.0).fmod(1.0), saturation, high), dim=1)


def _hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`_rgb_to_hsv`: the hue's sextant picks (v, p, q, t) for each channel."""
    h, s, v = hsv.unbind(dim=1)
    scaled = h * 6
    sector = torch.floor(scaled)
    frac = scaled - sector
    p = ((1.0 - s) * v).clamp(0.0, 1.0)
    q = ((1.0 - s * frac) * v).clamp(0.0, 1.0)
    t = (s * frac + (1.0 - s)) * v
    choices = torch.stack((v, p, q, t.clamp(0.0, 1.0)), dim=1)  # (n, 4, H, W)
    table = torch.tensor(
        [[0, 2, 1, 1, 3, 0], [3, 0, 0, 2, 1, 1], [1, 1, 3, 0, 0, 2]], device=hsv.device
    )
    return choices.gather(1, table[:, sector.to(torch.int64).remainder(6)].permute(1, 0, 2, 3))


def hue(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    hsv = _rgb_to_hsv(x.to(torch.float32).mul_(1.0 / 255))
    shifted = (hsv[:, 0] + _factor(factor, x.device)[:, 0]).remainder(1.0)
    rgb = _hsv_to_rgb(torch.cat([shifted.unsqueeze(1), hsv[:, 1:]], dim=1))
    return rgb.mul(255 + 1.0 - 1e-3).to(torch.uint8)  # torchvision's float -> uint8 scaling


JITTER = (brightness, contrast, saturation, hue)  # ColorJitter's function indices 0..3
JITTER_FIELDS = ("brightness", "contrast", "saturation", "hue")


def grayscale(x: torch.Tensor) -> torch.Tensor:
    return _gray(x).to(torch.uint8).expand(-1, 3, -1, -1)


def blur(x: torch.Tensor, sigma: torch.Tensor, kernel: int) -> torch.Tensor:
    """torchvision's Gaussian blur (its kernel: a softmax over a fixed grid scaled by 1/sigma), one
    sigma per view, as one grouped convolution."""
    n, c, height, width = x.shape
    limit = (kernel - 1) / (2.0 * 2.0**0.5)
    grid = torch.linspace(-limit, limit, kernel, dtype=torch.float32, device=x.device)
    k1 = torch.softmax(-(grid / _factor(sigma, x.device).view(-1, 1)).pow(2), dim=1)  # (n, k)
    k2 = (
        (k1.unsqueeze(-1) * k1.unsqueeze(1)).repeat_interleave(c, dim=0).unsqueeze(1)
    )  # (n c, 1, k, k)
    padded = nnf.pad(
        x.to(torch.float32).reshape(1, n * c, height, width), [kernel // 2] * 4, mode="reflect"
    )
    return (
        nnf.conv2d(padded, k2, groups=n * c).reshape(n, c, height, width).round_().to(torch.uint8)
    )


def _where(mask: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The views a step applies to: (host indices for the parameters, device indices for the
    pixels), or None when there are none."""
    index = mask.nonzero().flatten()
    return (index, index.to(device, non_blocking=True)) if len(index) else None


def resize_mode(bilinear: bool) -> tuple[InterpolationMode, bool]:
    """(interpolation, antialias) of a resized crop: bicubic antialiased, as PIL resizes DINO's
    crops, or bilinear without antialiasing, as the official DoRA code's video crops
    (``torch.nn.functional.interpolate``)."""
    return (InterpolationMode.BILINEAR, False) if bilinear else (InterpolationMode.BICUBIC, True)


def crops(
    sources: Sequence[torch.Tensor], which: Sequence[int], params: torch.Tensor
) -> torch.Tensor:
    """Resized crops (n, 3, S, S) uint8 of ``sources[which[i]]`` at each row's box; views with the
    same source and box (DoRA's clip-wide crop of stacked frames) are resized in one call."""
    size = int(params[0, F["size"]])
    out = [None] * len(which)
    groups: dict[tuple, list[int]] = {}
    for i, (source, row) in enumerate(zip(which, params.tolist())):
        groups.setdefault((source, *row[F["top"] : F["width"] + 1], row[F["bilinear"]]), []).append(
            i
        )
    for (source, top, left, height, width, bilinear), members in groups.items():
        image = sources[source]
        interpolation, antialias = resize_mode(bool(bilinear))
        resized = TF.resized_crop(
            image,
            int(top),
            int(left),
            int(height),
            int(width),
            [size, size],
            interpolation=interpolation,
            antialias=antialias,
        )
        for view, i in enumerate(members):
            out[i] = resized if resized.ndim == 3 else resized[view]
    return torch.stack(out)


def render(
    sources: Sequence[torch.Tensor], which: Sequence[int], params: torch.Tensor
) -> torch.Tensor:
    """Views (n, 3, S, S) float32, normalised: the view of row i is drawn from ``sources[which[i]]``
    (a (3, H, W) frame, or (T, 3, H, W) frames when DoRA's rows of one clip share a crop) by the
    parameters ``params[i]`` (float64 rows of ``wtpipe.data.transforms.FIELDS``, on the host)."""
    x = crops(sources, which, params)
    device, on = x.device, params > 0
    found = _where(on[:, F["flip"]], device)
    if found is not None:
        x[found[1]] = x[found[1]].flip(-1)
    for position in range(4):  # each view's own order of the four jitter functions
        order = params[:, F[f"order{position}"]]
        for fn, (op, name) in enumerate(zip(JITTER, JITTER_FIELDS)):
            found = _where(on[:, F["jitter"]] & (order == fn), device)
            if found is not None:
                x[found[1]] = op(x[found[1]], params[found[0], F[name]])
    found = _where(on[:, F["gray"]], device)
    if found is not None:
        x[found[1]] = grayscale(x[found[1]])
    for kernel in params[on[:, F["blur"]], F["kernel"]].unique().tolist():
        host, index = _where(on[:, F["blur"]] & (params[:, F["kernel"]] == kernel), device)
        x[index] = blur(x[index], params[host, F["sigma"]], int(kernel))
    for threshold in params[on[:, F["solarize"]], F["threshold"]].unique().tolist():
        _, index = _where(on[:, F["solarize"]] & (params[:, F["threshold"]] == threshold), device)
        views = x[index]
        x[index] = torch.where(views >= threshold, 255 - views, views)
    mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=device).view(1, 3, 1, 1)
    return x.to(torch.float32).mul_(1.0 / 255).sub_(mean).div_(std)
