"""YUV 4:2:0 frames as the decoder gives them, and the RGB they stand for.

A file's frames can reach the event head as the decoder's YUV 4:2:0 planes scaled to the model's size, laid as
PyAV lays them: one (3H/2, W) uint8 array, Y's H rows, then U's and V's H/2 × W/2 samples in H/4 rows of W each.
The head folds the conversion to RGB into its first conv (`EventHead.yuv420_first_level`); where RGB pixels are
needed anyway (a window encoder, a picture) `yuv420_to_rgb` makes the same RGB.
"""

from __future__ import annotations

import numpy as np

# RGB = M·(YUV − zero) as libswscale converts a stream that names no other colour space: BT.601, limited range
# (its yuv2rgb coefficients over 2^16)
BT601_LIMITED = ((1.16438, 0.0, 1.59603), (1.16438, -0.39176, -0.81297), (1.16438, 2.01723, 0.0))
YUV_ZERO = (16.0, 128.0, 128.0)


def yuv420_to_rgb(planes: np.ndarray) -> np.ndarray:
    """YUV 4:2:0 planes (..., 3H/2, W) uint8 → RGB (..., H, W, 3) uint8: BT.601 limited range, each chroma sample
    over its 2×2 pixels (what an event head reading the planes computes, here rounded and clipped)."""
    rows, w = planes.shape[-2:]
    h, lead = rows * 2 // 3, planes.shape[:-2]
    flat = planes.reshape(*lead, rows * w)
    y = flat[..., : h * w].reshape(*lead, h, w)
    uv = flat[..., h * w :].reshape(*lead, 2, h // 2, w // 2).repeat(2, -2).repeat(2, -1)
    yuv = np.stack([y, uv[..., 0, :, :], uv[..., 1, :, :]], -1).astype(np.float32) - np.float32(YUV_ZERO)
    rgb = yuv @ np.asarray(BT601_LIMITED, np.float32).T
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
