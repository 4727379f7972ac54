"""Normalizers of the vision sources into the tables of the download stage (vpt.vision.images
describes the encodings):

    ade20k    image, label (PNG class map, raw ADE ids: 0 = void), scene_category, height, width
    nyuv2     image, depth (float32 LE metres, 0 = invalid), height, width
    imagenet  image, label
    revisitop database: name, image; queries: name, image, bbx, easy, hard, junk

Each row is checked: the image decodes, a label or depth map has the image's size, class ids lie
in 0..num_classes (the dataset key `num_classes`), depths are finite and non-negative. A failure
is a ValueError naming the row (the download stage adds the dataset and file).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from vpt.data.columns import require
from vpt.vision.images import decode_label, encode_depth, encode_png

VISION_SCHEMAS = ("ade20k", "nyuv2", "imagenet", "revisitop")


def cell_bytes(value: Any, row: int, column: str) -> bytes:
    """The encoded bytes of an image cell: a hub Image() struct {bytes, path}, or raw bytes."""
    if isinstance(value, Mapping):
        data = value.get("bytes")
        if data is None and value.get("path"):
            try:
                with open(value["path"], "rb") as f:
                    return f.read()
            except OSError as e:
                raise ValueError(f"row {row}: {column} has no bytes and its path {value['path']} cannot be read: {e.strerror}") from e
        value = data
    if not isinstance(value, (bytes, bytearray)) or not value:
        raise ValueError(f"row {row}: {column} holds no encoded image (got {type(value).__name__})")
    return bytes(value)


def image_size(data: bytes, row: int, column: str = "image") -> tuple[int, int]:
    """(height, width) of a fully decodable image; a truncated or foreign file is an error."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            return im.height, im.width
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ValueError(f"row {row}: unreadable {column} ({len(data)} bytes): {e}") from e


def _num_classes(spec: Mapping[str, Any] | None) -> int | None:
    return None if spec is None else spec.get("num_classes")


def _same_size(row: int, what: str, got: tuple[int, int], image: tuple[int, int]) -> None:
    if got != image:
        raise ValueError(f"row {row}: {what} {got[1]}x{got[0]} does not match image {image[1]}x{image[0]}")


def ade20k(df: pd.DataFrame, spec: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Hub columns image, annotation, scene_category (the parquet branch of scene_parse_150)."""
    require(df, "ade20k", "image", "annotation", "scene_category")
    k = _num_classes(spec)
    images, labels, heights, widths = [], [], [], []
    for i, (img, ann) in enumerate(zip(df["image"], df["annotation"])):
        data = cell_bytes(img, i, "image")
        hw = image_size(data, i)
        try:
            label = decode_label(cell_bytes(ann, i, "annotation"))
        except ValueError as e:
            raise ValueError(f"row {i}: {e}") from e
        _same_size(i, "label", label.shape, hw)
        if k is not None and int(label.max(initial=0)) > k:
            raise ValueError(f"row {i}: label holds class id {int(label.max())} outside 0..{k} (num_classes {k})")
        images.append(data)
        labels.append(encode_png(label))
        heights.append(hw[0])
        widths.append(hw[1])
    return pd.DataFrame({"image": images, "label": labels, "scene_category": df["scene_category"].astype(int).to_numpy(),
                         "height": heights, "width": widths})


def decode_depth_image(data: bytes, row: int) -> np.ndarray:
    """A float depth image (mode F: metres, as an Image() feature stores a float array) -> (H, W)."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.mode != "F":
                raise ValueError(f"depth_map has mode {im.mode!r}; expected a float image (mode F, metres)")
            depth = np.asarray(im, dtype=np.float32)
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ValueError(f"row {row}: unreadable depth_map ({len(data)} bytes): {e}") from e
    except ValueError as e:
        raise ValueError(f"row {row}: {e}") from e
    if not np.isfinite(depth).all() or (depth < 0).any():
        raise ValueError(f"row {row}: depth_map holds non-finite or negative values (min {np.nanmin(depth):.3g})")
    return depth


def nyuv2(df: pd.DataFrame, spec: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Hub columns image, depth_map (sayakpaul/nyu_depth_v2)."""
    require(df, "nyuv2", "image", "depth_map")
    images, depths, heights, widths = [], [], [], []
    for i, (img, dep) in enumerate(zip(df["image"], df["depth_map"])):
        data = cell_bytes(img, i, "image")
        hw = image_size(data, i)
        depth = decode_depth_image(cell_bytes(dep, i, "depth_map"), i)
        _same_size(i, "depth", depth.shape, hw)
        images.append(data)
        depths.append(encode_depth(depth))
        heights.append(hw[0])
        widths.append(hw[1])
    return pd.DataFrame({"image": images, "depth": depths, "height": heights, "width": widths})


def imagenet(df: pd.DataFrame, spec: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Hub columns image, label (ILSVRC/imagenet-1k)."""
    require(df, "imagenet", "image", "label")
    k = _num_classes(spec)
    images = []
    for i, img in enumerate(df["image"]):
        data = cell_bytes(img, i, "image")
        image_size(data, i)
        images.append(data)
    labels = df["label"].astype(int).to_numpy()
    bad = np.flatnonzero((labels < 0) | (labels >= k)) if k is not None else np.flatnonzero(labels < 0)
    if len(bad):
        raise ValueError(f"row {int(bad[0])}: label {int(labels[bad[0]])} outside 0..{(k or 0) - 1} (num_classes {k})")
    return pd.DataFrame({"image": images, "label": labels})


def revisitop(df: pd.DataFrame, spec: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Raw rows from vpt.data.revisitop: name, image (+ bbx, easy, hard, junk, n_database for queries)."""
    require(df, "revisitop", "name", "image")
    images = []
    sizes = []
    for i, img in enumerate(df["image"]):
        data = cell_bytes(img, i, "image")
        sizes.append(image_size(data, i))
        images.append(data)
    out = pd.DataFrame({"name": df["name"].astype(str), "image": images})
    if "bbx" not in df:
        return out
    n_db = int(df["n_database"].iloc[0]) if len(df) else 0
    for i, (bbx, (h, w)) in enumerate(zip(df["bbx"], sizes)):
        x0, y0, x1, y1 = (float(v) for v in bbx)
        if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
            raise ValueError(f"row {i}: bbx {[x0, y0, x1, y1]} is not a box inside the {w}x{h} image")
        seen: set[int] = set()
        for kind in ("easy", "hard", "junk"):
            idx = [int(v) for v in df[kind].iloc[i]]
            if any(not 0 <= v < n_db for v in idx):
                raise ValueError(f"row {i}: {kind} holds a database index outside 0..{n_db - 1}")
            if seen & set(idx):
                raise ValueError(f"row {i}: database images {sorted(seen & set(idx))[:5]} are in more than one of easy/hard/junk")
            seen |= set(idx)
    for col in ("easy", "hard", "junk"):
        out[col] = [[int(v) for v in x] for x in df[col]]
    out.insert(2, "bbx", [[float(v) for v in b] for b in df["bbx"]])
    return out[["name", "image", "bbx", "easy", "hard", "junk"]]


NORMALIZERS_VISION = {"ade20k": ade20k, "nyuv2": nyuv2, "imagenet": imagenet, "revisitop": revisitop}
