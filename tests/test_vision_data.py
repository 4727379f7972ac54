"""Vision data: rendered targets in the hub layouts -> the real download stage (load_dataset,
normalizers, pools, revisitop by root and by file:// url), and bad input that must stop with the
file and row named and nothing written."""

from __future__ import annotations

import copy
import hashlib
import io
import json
import pickle
import tarfile
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from vpt.config import ConfigError, load_config, validate_config
from vpt.data.download import SourceError, download
from vpt.data.render import FAMILIES, NUM_CLASSES, OBJECT_CLASSES, WorldConfig, render_scene, synth_target
from vpt.vision.images import decode_depth, decode_label, decode_rgb

from conftest import REPO

SEED = 7
SPLITS = {"train": 24, "validation": 8}


def scenes_spec(schema: str, **kw: Any) -> dict[str, Any]:
    return {"kind": "scenes", "schema": schema, "seed": SEED, "image_size": 32, "splits": dict(SPLITS),
            "families": {f: 1 for f in FAMILIES}, "classes": {c: 1 for c in OBJECT_CLASSES}, **kw}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    for schema in ("ade20k", "nyuv2", "imagenet"):
        synth_target(scenes_spec(schema), root / schema)
    synth_target({"kind": "landmarks", "name": "roxford5k", "seed": 1, "image_size": 32, "landmarks": 4, "views": 5,
                  "queries": 1, "distractors": 3}, root / "landmarks")
    return root


def parquet_spec(world: Path, schema: str, **kw: Any) -> dict[str, Any]:
    return {"schema": schema, "path": "parquet", "data_files": {s: str(world / schema / f"{s}.parquet") for s in SPLITS}, **kw}


def assert_nothing_written(out: Path) -> None:
    assert not out.exists() or not any(out.iterdir()), list(out.iterdir())
    assert not any(p.name.endswith(".tmp") for p in out.parent.iterdir())


def test_synth_output_is_the_hub_layout_and_a_prefix_of_a_longer_split(world: Path, tmp_path: Path) -> None:
    feats = datasets.load_dataset("parquet", data_files={"train": str(world / "ade20k/train.parquet")}, split="train").features
    assert isinstance(feats["image"], datasets.Image) and isinstance(feats["annotation"], datasets.Image)
    assert feats["scene_category"].names == list(FAMILIES)
    manifest = json.loads((world / "ade20k/manifest.json").read_text())
    assert manifest["splits"]["train"]["rows"] == 24 and manifest["images_per_second"] > 0
    synth_target(scenes_spec("ade20k", splits={"train": 5}), tmp_path / "short")
    synth_target(scenes_spec("ade20k", splits={"train": 5}), tmp_path / "again")
    assert (tmp_path / "short/train.parquet").read_bytes() == (tmp_path / "again/train.parquet").read_bytes()
    short = pd.read_parquet(tmp_path / "short/train.parquet")
    long = pd.read_parquet(world / "ade20k/train.parquet")
    for col in ("image", "annotation"):
        assert [d["bytes"] for d in short[col]] == [d["bytes"] for d in long[col][:5]]


def test_ade20k_round_trip_with_pools(world: Path, tmp_path: Path) -> None:
    pools = {"seed": 3, "feedback_train": {"split": "train", "n": 10}, "feedback_meta": {"split": "train", "n": 4}}
    m = download("ade20k", parquet_spec(world, "ade20k", num_classes=NUM_CLASSES, pools=pools), tmp_path / "ade20k")
    assert list(m["splits"]) == ["train", "validation", "feedback_meta", "feedback_train"]
    train = pd.read_parquet(tmp_path / "ade20k/train.parquet")
    assert list(train.columns) == ["id", "image", "label", "scene_category", "height", "width"]
    cfg = WorldConfig(seed=SEED, image_size=32)
    for i in (0, 5, 23):
        s = render_scene(cfg, "train", i)
        np.testing.assert_array_equal(decode_label(train["label"][i]), s.label)  # the exact class map, 0 = void
        assert train["scene_category"][i] == s.category and (train["height"][i], train["width"][i]) == (32, 32)
        assert np.abs(decode_rgb(train["image"][i]).astype(int) - s.image).mean() < 6  # JPEG
    meta, fb = (pd.read_parquet(tmp_path / f"ade20k/{p}.parquet") for p in ("feedback_meta", "feedback_train"))
    assert len(meta) == 4 and len(fb) == 10 and not set(meta["id"]) & set(fb["id"])
    by_id = train.set_index("id")
    for pool in (meta, fb):
        assert set(pool["id"]) <= set(train["id"])
        assert all(by_id.loc[r.id, "image"] == r.image and by_id.loc[r.id, "label"] == r.label for r in pool.itertuples())
    assert m["pools"]["feedback_train"]["ids"] == list(fb["id"]) and m["pools"]["feedback_meta"]["seed"] == 3
    other = download("ade20k", parquet_spec(world, "ade20k", pools={**pools, "seed": 4}), tmp_path / "other")
    assert other["pools"]["feedback_train"]["ids"] != m["pools"]["feedback_train"]["ids"]


def test_nyuv2_and_imagenet_round_trip(world: Path, tmp_path: Path) -> None:
    download("nyuv2", parquet_spec(world, "nyuv2"), tmp_path / "nyuv2")
    val = pd.read_parquet(tmp_path / "nyuv2/validation.parquet")
    assert list(val.columns) == ["id", "image", "depth", "height", "width"]
    for i in (0, 7):
        s = render_scene(WorldConfig(seed=SEED, image_size=32), "validation", i)
        np.testing.assert_array_equal(decode_depth(val["depth"][i], 32, 32), s.depth)  # float32 metres, lossless
    download("imagenet", parquet_spec(world, "imagenet", num_classes=len(FAMILIES)), tmp_path / "imagenet")
    train = pd.read_parquet(tmp_path / "imagenet/train.parquet")
    assert list(train.columns) == ["id", "image", "label"]
    assert list(train["label"]) == [render_scene(WorldConfig(seed=SEED, image_size=32), "train", i).category for i in range(24)]


def test_revisitop_by_root_and_by_file_url(world: Path, tmp_path: Path) -> None:
    root = world / "landmarks"
    gnd = pickle.loads((root / "gnd_roxford5k.pkl").read_bytes())
    m = download("roxford5k", {"schema": "revisitop", "name": "roxford5k", "root": str(root)}, tmp_path / "a")
    db, q = pd.read_parquet(tmp_path / "a/database.parquet"), pd.read_parquet(tmp_path / "a/queries.parquet")
    assert list(db.columns) == ["id", "name", "image"] and list(q.columns) == ["id", "name", "image", "bbx", "easy", "hard", "junk"]
    assert list(db["name"]) == gnd["imlist"] and list(q["name"]) == gnd["qimlist"]
    for row, g in zip(q.itertuples(), gnd["gnd"]):
        assert list(row.bbx) == g["bbx"] and [list(row.easy), list(row.hard), list(row.junk)] == [g["easy"], g["hard"], g["junk"]]
    assert db["image"][0] == (root / "jpg" / f"{gnd['imlist'][0]}.jpg").read_bytes()
    # the release by url: a tarball of the images and the pickle, pinned by sha256
    tarball = tmp_path / "images.tgz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(root / "jpg", arcname="oxbuild")
    sha = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in (root / "gnd_roxford5k.pkl", tarball)}
    spec = {"schema": "revisitop", "name": "roxford5k", "cache_dir": str(tmp_path / "cache"),
            "url": {"gnd": (root / "gnd_roxford5k.pkl").as_uri(), "images": [tarball.as_uri()]},
            "sha256": {"gnd": sha[root / "gnd_roxford5k.pkl"], "images": [sha[tarball]]}}
    download("roxford5k", spec, tmp_path / "b")
    for split in ("database", "queries"):
        a, b = pd.read_parquet(tmp_path / f"a/{split}.parquet"), pd.read_parquet(tmp_path / f"b/{split}.parquet")
        assert a.drop(columns=["id"]).map(lambda v: v.tolist() if isinstance(v, np.ndarray) else v).equals(
            b.drop(columns=["id"]).map(lambda v: v.tolist() if isinstance(v, np.ndarray) else v))
    bad = copy.deepcopy(spec)
    bad["sha256"]["gnd"] = "0" * 64
    bad["cache_dir"] = str(tmp_path / "cache2")
    with pytest.raises(SourceError) as err:
        download("roxford5k", bad, tmp_path / "c")
    assert all(s in str(err.value) for s in ("gnd_roxford5k.pkl", "0" * 64, sha[root / "gnd_roxford5k.pkl"], "mismatch"))
    assert_nothing_written(tmp_path / "c")
    assert not [p for p in (tmp_path / "cache2").rglob("*") if p.is_file()]  # the bad download is not kept
    unpinned = {**spec, "sha256": {"gnd": None}, "cache_dir": str(tmp_path / "cache3")}
    with pytest.raises(SourceError, match="no sha256 pin"):
        download("roxford5k", unpinned, tmp_path / "d")


def _rewrite(src: Path, dst: Path, edit) -> Path:  # type: ignore[no-untyped-def]
    ds = datasets.load_dataset("parquet", data_files={"x": str(src)}, split="x")
    rows = {c: list(v) for c, v in ds.to_pandas().to_dict(orient="list").items()}  # images as {bytes, path}
    edit(rows)
    dst.parent.mkdir(parents=True, exist_ok=True)
    # plain integers, so that a bad label can be written at all (ClassLabel refuses one)
    features = datasets.Features({k: datasets.Value("int64") if isinstance(f, datasets.ClassLabel) else f for k, f in ds.features.items()})
    datasets.Dataset.from_dict(rows, features=features).to_parquet(str(dst))
    return dst


def _png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


BAD_CASES = {
    "label size": ("ade20k", lambda r: r["annotation"][5].update(bytes=_png(np.zeros((24, 32), np.uint8))),
                   "row 5: label 32x24 does not match image 32x32"),
    "class id": ("ade20k", lambda r: r["annotation"][3].update(bytes=_png(np.full((32, 32), 40, np.uint8))),
                 f"row 3: label holds class id 40 outside 0..{NUM_CLASSES}"),
    "unreadable image": ("nyuv2", lambda r: r["image"][4].update(bytes=b"\xff\xd8 not a jpeg"), "row 4: unreadable image"),
    "depth size": ("nyuv2", lambda r: r["depth_map"][2].update(bytes=_tiff(np.ones((16, 32), np.float32))),
                   "row 2: depth 32x16 does not match image 32x32"),
    "imagenet label": ("imagenet", lambda r: r["label"].__setitem__(6, 9), "row 6: label 9 outside 0..3"),
}


def _tiff(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a, mode="F").save(buf, format="TIFF")
    return buf.getvalue()


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_rows_stop_with_file_and_row_and_write_nothing(world: Path, tmp_path: Path, case: str) -> None:
    schema, edit, message = BAD_CASES[case]
    bad = _rewrite(world / schema / "validation.parquet", tmp_path / "bad" / "validation.parquet", edit)
    spec = parquet_spec(world, schema, num_classes=NUM_CLASSES if schema == "ade20k" else len(FAMILIES))
    spec["data_files"]["validation"] = str(bad)
    out = tmp_path / "raw" / schema
    with pytest.raises(SourceError) as err:
        download(schema, spec, out)
    assert str(bad) in str(err.value) and message in str(err.value), str(err.value)
    assert_nothing_written(out)


def test_missing_split_pool_too_big_and_pool_leaking_into_validation(world: Path, tmp_path: Path) -> None:
    spec = parquet_spec(world, "ade20k")
    spec["data_files"]["validation"] = str(tmp_path / "nope" / "validation.parquet")
    with pytest.raises(SourceError, match=r"split 'validation': source file .*nope/validation.parquet does not exist"):
        download("ade20k", spec, tmp_path / "raw/a")
    assert_nothing_written(tmp_path / "raw/a")
    big = parquet_spec(world, "ade20k", pools={"seed": 0, "feedback_train": {"split": "train", "n": 20}, "feedback_meta": {"split": "train", "n": 5}})
    with pytest.raises(SourceError, match=r"pool 'feedback_train' asks for 20 rows of split 'train', which has 24 \(5 already taken"):
        download("ade20k", big, tmp_path / "raw/b")
    assert_nothing_written(tmp_path / "raw/b")
    # a validation set holding a copy of a train image: a pool drawing that row must be refused
    train = pd.read_parquet(world / "ade20k/train.parquet")
    leak = _rewrite(world / "ade20k/validation.parquet", tmp_path / "leak/validation.parquet",
                    lambda r: r["image"][2].update(bytes=train["image"][11]["bytes"]))
    spec = parquet_spec(world, "ade20k", pools={"seed": 0, "feedback_train": {"split": "train", "n": 24}})
    spec["data_files"]["validation"] = str(leak)
    with pytest.raises(SourceError) as err:
        download("ade20k", spec, tmp_path / "raw/c")
    assert "pool 'feedback_train' row 11 (id ade20k/train/11) has the same image bytes as 'validation' row 2 (id ade20k/validation/2)" in str(err.value)
    assert_nothing_written(tmp_path / "raw/c")


def test_configs_validate_and_name_bad_vision_keys() -> None:
    cfg = load_config([REPO / "config" / "config.yaml"])
    assert cfg["synth"]["ade20k_world"]["classes"] == {c: 1 for c in OBJECT_CLASSES}  # schema default
    assert cfg["datasets"]["roxford5k"]["cache_dir"] == "data/cache/revisitop"
    assert "cache_dir" not in cfg["datasets"]["gsm8k"]  # revisitop's default only
    base = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for edit, expected in [
        (lambda c: c["synth"]["ade20k_world"]["families"].update(forest=1), ["synth.ade20k_world.families", "'forest'", "street, room, garden, hall"]),
        (lambda c: c["synth"]["ade20k_world"].update(schema="coco"), ["synth.ade20k_world.schema", "ade20k, nyuv2, imagenet"]),
        (lambda c: c["synth"]["roxford_world"].update(views=0), ["synth.roxford_world.views", "minimum"]),
        (lambda c: c["datasets"]["roxford5k"].pop("root"), ["datasets.roxford5k", "root | url"]),
        (lambda c: c["datasets"]["ade20k"]["pools"].update(feedback_train={"split": "train"}), ["datasets.ade20k.pools.feedback_train", "'n'"]),
    ]:
        cfg = copy.deepcopy(base)
        edit(cfg)
        with pytest.raises(ConfigError) as err:
            validate_config(cfg, source="my.yaml")
        assert all(e in str(err.value) for e in expected), str(err.value)


@pytest.mark.parametrize("schema, data_dir", [("ade20k", "scene_parsing"), ("nyuv2", "default")])
def test_parquet_branch_layout_loads_like_the_hub(world: Path, tmp_path: Path, schema: str, data_dir: str) -> None:
    """paper.yaml reads the hub's refs/convert/parquet branch: <config dir>/<split>/0000.parquet,
    selected with read_options.data_dir. The same spec on a directory laid out that way (the
    revision null, as for a local path) takes exactly that code path offline."""
    repo = tmp_path / "hub" / schema
    for split in SPLITS:
        (repo / data_dir / split).mkdir(parents=True)
        (repo / data_dir / split / "0000.parquet").write_bytes((world / schema / f"{split}.parquet").read_bytes())
    (repo / "other" / "train").mkdir(parents=True)  # another config directory must not leak in
    (repo / "other" / "train" / "0000.parquet").write_bytes((world / "imagenet/train.parquet").read_bytes())
    spec = {"schema": schema, "path": str(repo), "revision": None, "read_options": {"data_dir": data_dir},
            "splits": list(SPLITS)}
    m = download(schema, spec, tmp_path / "out")
    assert {s: v["rows"] for s, v in m["splits"].items()} == SPLITS
    local = download(schema, parquet_spec(world, schema), tmp_path / "local")
    for split in SPLITS:
        a, b = (pd.read_parquet(tmp_path / d / f"{split}.parquet") for d in ("out", "local"))
        assert a.equals(b)
    assert m["splits"]["train"]["sha256"] == local["splits"]["train"]["sha256"]


def test_cli_renders_a_configured_target(tmp_path: Path) -> None:
    from vpt.cli import main

    out = tmp_path / "rparis"
    assert main(["data", "synth", "rparis_world", "--config", str(REPO / "config/config.yaml"), "--out", str(out)]) == 0
    cfg = load_config([REPO / "config/config.yaml"])["synth"]["rparis_world"]
    gnd = pickle.loads((out / "gnd_rparis6k.pkl").read_bytes())
    assert len(gnd["imlist"]) == cfg["landmarks"] * cfg["views"] + cfg["distractors"]
    assert sorted(p.stem for p in (out / "jpg").iterdir()) == sorted(gnd["imlist"] + gnd["qimlist"])
    assert json.loads((out / "manifest.json").read_text())["gnd"]["sha256"] == hashlib.sha256((out / "gnd_rparis6k.pkl").read_bytes()).hexdigest()
    assert main(["data", "synth", "forest_world", "--config", str(REPO / "config/config.yaml")]) == 2


def test_a_failing_render_leaves_no_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "synth" / "bad"
    with pytest.raises(ValueError, match="unknown object class 'dragon'"):
        synth_target(scenes_spec("ade20k", classes={"dragon": 1}), out)
    with pytest.raises(ValueError, match="unknown scenes schema 'coco'"):
        synth_target(scenes_spec("coco"), out)
    assert not out.exists()
    synth_target(scenes_spec("ade20k", splits={"train": 2}), out)  # a good target, then a rerun that fails midway
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    import vpt.data.render.writers as writers

    real = writers.render_scene

    def flaky(cfg: WorldConfig, split: str, i: int):  # type: ignore[no-untyped-def]
        if split == "validation" and i == 3:
            raise RuntimeError("disk full")
        return real(cfg, split, i)

    monkeypatch.setattr(writers, "render_scene", flaky)
    with pytest.raises(RuntimeError, match="disk full"):
        synth_target(scenes_spec("ade20k"), out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the old target, whole
    assert sorted(p.name for p in out.parent.iterdir()) == ["bad"]  # no temporary directory left
