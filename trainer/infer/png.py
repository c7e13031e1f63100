"""PNG files from numpy arrays with zlib alone, so reports need neither Pillow nor matplotlib.

An 8-bit RGB image, every row with filter 0 (none), one IDAT chunk; each chunk's CRC is zlib's crc32
over its type and data, as the PNG specification defines it.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png(rgb: np.ndarray) -> bytes:
    """The PNG bytes of an image (height, width, 3) of uint8."""
    image = np.asarray(rgb)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"an image is (height, width, 3) uint8, not {image.shape} {image.dtype}")
    height, width = image.shape[:2]
    if not height or not width:
        raise ValueError(f"an image of {width} x {height} pixels has nothing to show")
    rows = np.concatenate([np.zeros((height, 1), dtype=np.uint8), image.reshape(height, width * 3)], axis=1)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bits, RGB, deflate, filter 0, no interlace
    return SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)) + _chunk(b"IEND", b"")


# Anchors of a perceptually ordered dark-to-bright map (viridis' ends and middle, sampled).
_COLORMAP = np.array([
    [68, 1, 84], [72, 40, 120], [62, 74, 137], [49, 104, 142], [38, 130, 142],
    [31, 158, 137], [53, 183, 121], [109, 205, 89], [180, 222, 44], [253, 231, 37],
], dtype=np.float64)


def colormap(values: np.ndarray) -> np.ndarray:
    """uint8 RGB of values in [0, 1] (clipped), interpolated between the map's anchors."""
    v = np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0) * (len(_COLORMAP) - 1)
    low = np.floor(v).astype(int)
    high = np.minimum(low + 1, len(_COLORMAP) - 1)
    t = (v - low)[..., None]
    return np.round(_COLORMAP[low] * (1 - t) + _COLORMAP[high] * t).astype(np.uint8)
