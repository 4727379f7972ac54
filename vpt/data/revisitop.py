"""The revisitop source (Revisited Oxford 5k / Paris 6k): not on the hub, so read from its
release layout, either a local `root` (<root>/gnd_<name>.pkl, <root>/jpg/<image>.jpg) or `url`s
of the real release (the ground-truth pickle and the image tarballs), downloaded with urllib into
a cache and verified against sha256 pins before anything reads them.

The ground truth is revisitop's: a pickle with imlist (database image names), qimlist (query
names) and gnd, one dict per query with bbx [x0, y0, x1, y1] and easy / hard / junk lists of
0-based database indices. The raw tables this returns (database: name, image; queries: name,
image, bbx, easy, hard, junk, n_database) go to vpt.data.normalize_vision.revisitop.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tarfile
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pandas as pd

from vpt.errors import SourceError
from vpt.io import sha256_file


def fetch(url: str, sha256: str | None, cache_dir: Path) -> Path:
    """The file at `url` in `cache_dir`, downloaded if absent or not matching its pin."""
    if not sha256:
        raise SourceError(f"{url}: no sha256 pin in the config; an unverified download is not used")
    name = Path(urllib.parse.urlparse(url).path).name
    target = cache_dir / name
    if target.exists() and sha256_file(target) == sha256:
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=cache_dir)
    tmp = Path(tmp_name)
    try:
        h = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as resp:  # noqa: S310 (pinned by sha256)
            while block := resp.read(1 << 20):
                h.update(block)
                out.write(block)
        if h.hexdigest() != sha256:
            raise SourceError(f"{url} (cached as {target}): sha256 mismatch: expected {sha256}, got {h.hexdigest()}")
        os.replace(tmp, target)
    except OSError as e:
        raise SourceError(f"cannot download {url}: {e}") from e
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _extract(archive: Path, dest: Path) -> None:
    """Unpack a tarball once (a marker file records it), refusing paths outside `dest`."""
    marker = dest / f".{archive.name}.extracted"
    if marker.exists():
        return
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, OSError) as e:
        raise SourceError(f"cannot extract {archive}: {e}") from e
    marker.write_text("")


def resolve(name: str, spec: dict[str, Any]) -> tuple[Path, Path, list[str]]:
    """(ground-truth file, image directory, local input files) of a revisitop source."""
    gname = spec.get("name") or name
    if spec.get("root"):
        root = Path(spec["root"])
        gnd = root / f"gnd_{gname}.pkl"
        if not gnd.is_file():
            raise SourceError(f"dataset {name!r}: ground truth {gnd} does not exist")
        pin = (spec.get("sha256") or {}).get("gnd")
        if pin and sha256_file(gnd) != pin:
            raise SourceError(f"dataset {name!r}: {gnd}: sha256 mismatch: expected {pin}, got {sha256_file(gnd)}")
        return gnd, root / "jpg", [str(gnd)]
    url, pins = spec["url"], spec.get("sha256") or {}
    cache = Path(spec["cache_dir"]) / gname  # default (schema): data/cache/revisitop
    gnd = fetch(url["gnd"], pins.get("gnd"), cache)
    image_pins = list(pins.get("images") or [])
    images = cache / "jpg"
    files = [str(gnd)]
    for i, u in enumerate(url.get("images", [])):
        archive = fetch(u, image_pins[i] if i < len(image_pins) else None, cache)
        _extract(archive, images)
        files.append(str(archive))
    return gnd, images, files


def read_gnd(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            gnd = pickle.load(f)  # noqa: S301 (a file verified against its sha256 pin, or our own render)
    except (OSError, pickle.UnpicklingError, EOFError) as e:
        raise SourceError(f"cannot read ground truth {path}: {e}") from e
    missing = [k for k in ("imlist", "qimlist", "gnd") if k not in gnd]
    if missing or len(gnd["gnd"]) != len(gnd["qimlist"]):
        raise SourceError(f"ground truth {path}: needs imlist, qimlist and one gnd entry per query (missing {missing})")
    return gnd


def load_revisitop(name: str, spec: dict[str, Any]) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """Raw database and queries tables of a revisitop source and the files read."""
    gnd_file, image_dir, files = resolve(name, spec)
    gnd = read_gnd(gnd_file)
    index = {p.stem: p for p in image_dir.rglob("*.jpg")} if image_dir.is_dir() else {}

    def images(split: str, names: list[str]) -> list[bytes]:
        out = []
        for row, n in enumerate(names):
            if n not in index:
                raise SourceError(f"dataset {name!r} ({gnd_file}) {split} row {row}: image {n}.jpg not found under {image_dir}")
            out.append(index[n].read_bytes())
        return out

    database = pd.DataFrame({"name": gnd["imlist"], "image": images("database", list(gnd["imlist"]))})
    g = gnd["gnd"]
    queries = pd.DataFrame({
        "name": gnd["qimlist"], "image": images("queries", list(gnd["qimlist"])),
        "bbx": [list(q["bbx"]) for q in g], "easy": [list(q["easy"]) for q in g],
        "hard": [list(q["hard"]) for q in g], "junk": [list(q["junk"]) for q in g],
        "n_database": len(gnd["imlist"]),
    })
    return {"database": database, "queries": queries}, files

