"""Writers: rendered images in the hub sources' own layouts, so that `vpt data download` reads
synthetic and real data with the same code.

    ade20k    (zhoubolei/scene_parse_150, parquet branch): image (JPEG), annotation (PNG class
              map, 0 = void), scene_category (ClassLabel)
    nyuv2     (sayakpaul/nyu_depth_v2, parquet branch): image (JPEG), depth_map (a float32 TIFF,
              mode F, metres; PIL reads it back as such)
    imagenet  (ILSVRC/imagenet-1k): image (JPEG), label (ClassLabel)
    revisitop the release layout: <root>/jpg/<name>.jpg and <root>/gnd_<name>.pkl with imlist,
              qimlist and gnd (bbx, easy, hard, junk as 0-based database indices)

Images are columns of `datasets.Image()`, stored as {bytes, path} exactly as hub parquet files
store them. A target is built in a temporary sibling directory, its manifest.json written last,
and then swapped into place, so `data/synth/<name>/` is either complete or absent.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from vpt.data.render.landmarks import LandmarkConfig, render_landmarks
from vpt.data.render.world import FAMILIES, WorldConfig, render_scene
from vpt.io import sha256_file
from vpt.vision.images import encode_png

SCENE_SCHEMAS = ("ade20k", "nyuv2", "imagenet")
JPEG_QUALITY = 92


def encode_jpeg(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def encode_depth_tiff(depth: np.ndarray) -> bytes:
    """(H, W) float32 metres -> a mode-F TIFF, the way an Image() feature stores a float array."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(depth, dtype=np.float32), mode="F").save(buf, format="TIFF")
    return buf.getvalue()


@contextlib.contextmanager
def replace_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary directory that replaces `path` as a whole if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    old = path.parent / f".{path.name}.old"
    try:
        yield tmp
        tmp.chmod(0o755)  # mkdtemp makes it private; the target is an ordinary directory
        shutil.rmtree(old, ignore_errors=True)
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def _features(schema: str) -> Any:
    import datasets

    img = datasets.Image()
    if schema == "ade20k":
        return datasets.Features({"image": img, "annotation": datasets.Image(),
                                  "scene_category": datasets.ClassLabel(names=list(FAMILIES))})
    if schema == "nyuv2":
        return datasets.Features({"image": img, "depth_map": datasets.Image()})
    if schema == "imagenet":
        return datasets.Features({"image": img, "label": datasets.ClassLabel(names=list(FAMILIES))})
    raise ValueError(f"unknown scenes schema {schema!r}; choose one of: {', '.join(SCENE_SCHEMAS)}")


def scene_rows(schema: str, cfg: WorldConfig, split: str, n: int) -> dict[str, list[Any]]:
    """The columns of one split in the hub layout of `schema`."""
    cols: dict[str, list[Any]] = {k: [] for k in _features(schema)}
    for i in range(n):
        s = render_scene(cfg, split, i)
        cols["image"].append({"bytes": encode_jpeg(s.image), "path": f"{split}_{i:06d}.jpg"})
        if schema == "ade20k":
            cols["annotation"].append({"bytes": encode_png(s.label), "path": f"{split}_{i:06d}.png"})
            cols["scene_category"].append(s.category)
        elif schema == "nyuv2":
            cols["depth_map"].append({"bytes": encode_depth_tiff(s.depth), "path": f"{split}_{i:06d}.tiff"})
        else:
            cols["label"].append(s.category)
    return cols


def write_scenes(spec: dict[str, Any], out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Render every split of a `kind: scenes` target into <out_dir>/<split>.parquet; return its manifest."""
    import datasets

    schema = spec["schema"]
    features = _features(schema)
    cfg = WorldConfig(seed=spec["seed"], image_size=spec["image_size"], families=dict(spec["families"]),
                      classes=dict(spec["classes"]))
    manifest: dict[str, Any] = {"kind": "scenes", "schema": schema, "settings": spec, "splits": {}}
    start = time.perf_counter()
    with replace_dir(out_dir) as tmp:
        for split, n in spec["splits"].items():
            ds = datasets.Dataset.from_dict(scene_rows(schema, cfg, split, n), features=features)
            ds.to_parquet(str(tmp / f"{split}.parquet"))
            manifest["splits"][split] = {"file": f"{split}.parquet", "rows": n, "sha256": sha256_file(tmp / f"{split}.parquet")}
        _finish(manifest, start, sum(spec["splits"].values()), tmp)
    return manifest


def write_landmarks(spec: dict[str, Any], out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Render a `kind: landmarks` target in the revisitop release layout; return its manifest."""
    cfg = LandmarkConfig(name=spec["name"], seed=spec["seed"], image_size=spec["image_size"], landmarks=spec["landmarks"],
                         views=spec["views"], queries=spec["queries"], distractors=spec["distractors"])
    start = time.perf_counter()
    database, queries, gnd = render_landmarks(cfg)
    manifest: dict[str, Any] = {"kind": "landmarks", "name": cfg.name, "settings": spec,
                                "database": len(database), "queries": len(queries)}
    with replace_dir(out_dir) as tmp:
        (tmp / "jpg").mkdir()
        for name, view in [*database, *queries]:
            (tmp / "jpg" / f"{name}.jpg").write_bytes(encode_jpeg(view.image))
        gnd_file = tmp / f"gnd_{cfg.name}.pkl"
        with open(gnd_file, "wb") as f:
            pickle.dump({"imlist": [n for n, _ in database], "qimlist": [n for n, _ in queries], "gnd": gnd}, f, protocol=4)
        manifest["gnd"] = {"file": gnd_file.name, "sha256": sha256_file(gnd_file)}
        _finish(manifest, start, len(database) + len(queries), tmp)
    return manifest


def _finish(manifest: dict[str, Any], start: float, images: int, tmp: Path) -> None:
    seconds = time.perf_counter() - start
    manifest["images"] = images
    manifest["seconds"] = round(seconds, 3)
    manifest["images_per_second"] = round(images / max(seconds, 1e-9), 1)
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
