"""YUV 4:2:0 frames as the decoder gives them, and the RGB they stand for.

A file's frames can reach the event head as YUV 4:2:0 scaled to the model's size, in the NV12 layout as PyAV
gives it: one (3H/2, W) uint8 array, Y's H rows, then H/2 rows of W/2 chroma samples, each a (U, V) pair side by
side (the event head reads each patch's bytes so; libswscale writes it as fast as separate U and V planes, the
same values within a level).
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
    """YUV 4:2:0 frames (..., 3H/2, W) uint8, NV12 → RGB (..., H, W, 3) uint8: BT.601 limited range, each chroma sample
    over its 2×2 pixels (what an event head reading the planes computes, here rounded and clipped)."""
    rows, w = planes.shape[-2:]
    h, lead = rows * 2 // 3, planes.shape[:-2]
    flat = planes.reshape(*lead, rows * w)
    y = flat[..., : h * w].reshape(*lead, h, w)
    uv = flat[..., h * w :].reshape(*lead, h // 2, w // 2, 2).repeat(2, -3).repeat(2, -2)
    yuv = np.concatenate([y[..., None], uv], -1).astype(np.float32) - np.float32(YUV_ZERO)
    rgb = yuv @ np.asarray(BT601_LIMITED, np.float32).T
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
