"""How images and dense labels are stored in the normalized vision tables, and read back.

The normalized tables (vpt.data.normalize_vision, written by the download stage) hold encoded
bytes, not arrays, so a split is one parquet file like every other dataset:

    image   the source's own encoded bytes (JPEG or PNG), decoded to RGB uint8 (H, W, 3)
    label   a single-channel 8-bit PNG of class ids in the source's convention (ADE20K: 0 = void)
    depth   float32 little-endian, row-major (H, W), metres; `height` and `width` columns give H, W

Decoding errors are ValueError naming what failed; callers add the file and row.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, UnidentifiedImageError


def decode_rgb(data: bytes) -> np.ndarray:
    """Encoded image bytes -> (H, W, 3) uint8 RGB."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ValueError(f"unreadable image ({len(data)} bytes): {e}") from e


def decode_label(data: bytes) -> np.ndarray:
    """A single-channel PNG of class ids -> (H, W) uint8 (mode L or P; palette indices are the ids)."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.mode not in ("L", "P", "I;16", "I"):
                raise ValueError(f"label image has mode {im.mode!r}; expected a single-channel class map (L or P)")
            arr = np.asarray(im)
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ValueError(f"unreadable label image ({len(data)} bytes): {e}") from e
    if arr.max(initial=0) > 255:
        raise ValueError(f"label image holds class id {int(arr.max())} > 255")
    return arr.astype(np.uint8)


def encode_png(array: np.ndarray) -> bytes:
    """(H, W, 3) uint8 RGB or (H, W) uint8 class ids -> PNG bytes (lossless, deterministic)."""
    if array.dtype != np.uint8 or array.ndim not in (2, 3):
        raise ValueError(f"encode_png takes (H, W) or (H, W, 3) uint8, got {array.dtype} {array.shape}")
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def encode_depth(depth: np.ndarray) -> bytes:
    """(H, W) metres -> float32 little-endian bytes (read back by decode_depth with H, W)."""
    if depth.ndim != 2:
        raise ValueError(f"depth must be (H, W), got shape {depth.shape}")
    return np.ascontiguousarray(depth, dtype="<f4").tobytes()


def decode_depth(data: bytes, height: int, width: int) -> np.ndarray:
    """float32 little-endian bytes -> (H, W) float32 metres."""
    if len(data) != 4 * height * width:
        raise ValueError(f"depth holds {len(data)} bytes; {height} x {width} float32 needs {4 * height * width}")
    return np.frombuffer(data, dtype="<f4").reshape(height, width).astype(np.float32)
