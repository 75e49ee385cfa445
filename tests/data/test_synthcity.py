"""Tests of the SynthCity generator: layouts, label validity, class coverage, private classes, frequencies,
determinism across worker counts, argument errors and the preview."""
from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from cityscapesscripts.helpers.labels import labels as CS_LABELS
from conftest import load_tool

from seg_uda.data.synthcity import (TRAIN_CITIES, VAL_CITIES, colorize, eval_classes, frame_rng,
                                    generate_synthcity, parse_size, render_frame, write_preview)
from seg_uda.data.synthcity.scene import build_scene

VALID_IDS = {lb.id for lb in CS_LABELS if lb.id >= 0}
EVAL_NAMES = [lb.name for lb in sorted((lb for lb in CS_LABELS if 0 <= lb.trainId < 255), key=lambda lb: lb.trainId)]
SRC, TGT = (64, 32), (48, 32)
COUNTS = dict(num_source=3, num_target_train=5, num_target_val=3)


def _gen(out: Path, seed: int = 0, workers: int = 1) -> dict:
    return generate_synthcity(out, seed=seed, source_size=SRC, target_size=TGT, workers=workers, **COUNTS)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synthcity") / "sc"
    _gen(out)
    return out


def _read(path: Path, color: bool = False) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR if color else cv2.IMREAD_UNCHANGED)
    assert img is not None, path
    return img


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_layout_and_file_names(tiny: Path) -> None:
    game_imgs = sorted(p.name for p in (tiny / "game" / "images").iterdir())
    game_lbls = sorted(p.name for p in (tiny / "game" / "labels").iterdir())
    assert game_imgs == game_lbls == [f"{i:05d}.png" for i in range(1, COUNTS["num_source"] + 1)]
    for name in game_imgs:
        img, lbl = _read(tiny / "game" / "images" / name, True), _read(tiny / "game" / "labels" / name)
        assert img.shape == (SRC[1], SRC[0], 3) and lbl.shape == (SRC[1], SRC[0]) and lbl.dtype == np.uint8
        assert set(np.unique(lbl).tolist()) <= VALID_IDS

    stem_re = re.compile(r"^([a-z]+)_(\d{6})_(\d{6})_leftImg8bit\.png$")
    for split, n, cities in (("train", COUNTS["num_target_train"], TRAIN_CITIES),
                             ("val", COUNTS["num_target_val"], VAL_CITIES)):
        imgs = sorted((tiny / "real" / "leftImg8bit" / split).glob("*/*.png"))
        assert len(imgs) == n
        for p in imgs:
            m = stem_re.match(p.name)
            assert m, p.name
            city = m.group(1)
            assert p.parent.name == city and city in cities
            stem = p.name[: -len("_leftImg8bit.png")]
            gt_dir = tiny / "real" / "gtFine" / split / city
            lbl = _read(gt_dir / f"{stem}_gtFine_labelIds.png")
            priv = _read(gt_dir / f"{stem}_gtFine_privateIds.png")
            assert _read(p, True).shape == (TGT[1], TGT[0], 3)
            assert lbl.shape == priv.shape == (TGT[1], TGT[0]) and lbl.dtype == priv.dtype == np.uint8
            assert set(np.unique(lbl).tolist()) <= VALID_IDS
            assert set(np.unique(priv).tolist()) <= {0, 1, 2}
            # private pixels are 'unlabeled' (id 0, train id 255) in the closed-set labels
            assert np.all(lbl[priv > 0] == 0)
        gts = sorted((tiny / "real" / "gtFine" / split).glob("*/*"))
        assert len(gts) == 2 * n  # exactly one labelIds and one privateIds per image
    assert not set(TRAIN_CITIES) & set(VAL_CITIES)
    assert (tiny / "README.md").is_file() and "privateIds" in (tiny / "README.md").read_text()


def test_meta_json(tiny: Path) -> None:
    meta = json.loads((tiny / "synthcity_meta.json").read_text())
    assert meta["seed"] == 0 and meta["source_size"] == list(SRC) and meta["target_size"] == list(TGT)
    assert meta["counts"] == {"game": 3, "real_train": 5, "real_val": 3}
    assert [c["name"] for c in meta["classes"]] == EVAL_NAMES
    assert meta["private_classes"] == {"1": "animal", "2": "tuk-tuk"} and meta["private_label_id"] == 0
    assert meta["version"]


def test_class_frequencies_match_label_files(tiny: Path) -> None:
    for domain, pattern in (("game", "game/labels/*.png"), ("real", "real/gtFine/*/*/*_labelIds.png")):
        table = json.loads((tiny / domain / "class_frequencies.json").read_text())
        lbls = [_read(p) for p in sorted(tiny.glob(pattern))]
        assert table["num_images"] == len(lbls)
        assert table["num_pixels"] == sum(lb.size for lb in lbls)
        assert list(table["classes"]) == EVAL_NAMES
        total = 0.0
        for name, entry in table["classes"].items():
            pix = sum(int((lb == entry["id"]).sum()) for lb in lbls) / table["num_pixels"]
            img = sum(bool((lb == entry["id"]).any()) for lb in lbls) / len(lbls)
            assert entry["pixel_fraction"] == pytest.approx(pix, abs=1e-6)
            assert entry["image_fraction"] == pytest.approx(img, abs=1e-5)
            total += entry["pixel_fraction"]
        assert total + table["ignored_pixel_fraction"] == pytest.approx(1.0, abs=1e-5)
        assert table["classes"]["road"]["pixel_fraction"] > 0.05  # roads are common
    real = json.loads((tiny / "real" / "class_frequencies.json").read_text())
    assert set(real["private"]) == {"animal", "tuk-tuk"} and set(real["splits"]) == {"train", "val"}


def test_all_19_classes_and_private_only_in_target() -> None:
    """The scene sampler produces all 19 evaluation classes; private classes only in the target domain."""
    eval_ids = {int(c["id"]) for c in eval_classes()}
    for domain in ("game", "real"):
        seen: set[int] = set()
        private_seen: set[int] = set()
        for i in range(80):
            _, buf, rec = build_scene(domain, frame_rng(0, domain, "train", i), 96, 48)
            lbl, priv = rec["label"][buf], rec["private"][buf]
            seen |= set(np.unique(lbl).tolist())
            private_seen |= set(np.unique(priv).tolist()) - {0}
            assert np.all(lbl[priv > 0] == 0)
            if seen >= eval_ids and (domain == "game" or private_seen == {1, 2}):
                break
        assert eval_ids <= seen, f"{domain}: missing ids {sorted(eval_ids - seen)}"
        assert private_seen == ({1, 2} if domain == "real" else set())


def test_render_frame_api_and_domain_look() -> None:
    frames = {d: render_frame(d, frame_rng(3, d, "all", 0), "96x64") for d in ("game", "real")}
    for rgb, lbl, priv in frames.values():
        assert rgb.shape == (64, 96, 3) and lbl.shape == priv.shape == (64, 96)
        assert rgb.dtype == lbl.dtype == priv.dtype == np.uint8
    # the game domain is flat-shaded: far fewer distinct colours than the textured, noisy real domain
    n_colours = {d: len(np.unique(f[0].reshape(-1, 3), axis=0)) for d, f in frames.items()}
    assert n_colours["game"] * 4 < n_colours["real"]
    # same rng state -> same frame
    again = render_frame("real", frame_rng(3, "real", "all", 0), (96, 64))
    assert all(np.array_equal(a, b) for a, b in zip(frames["real"], again))
    with pytest.raises(ValueError, match="domain"):
        render_frame("cartoon", frame_rng(0, "game", "all", 0), (64, 32))


def test_same_seed_byte_identical_across_workers(tmp_path: Path, tiny: Path) -> None:
    out = tmp_path / "w2"
    _gen(out, seed=0, workers=2)
    files = _files(tiny)
    assert files == _files(out)
    for rel in files:
        assert (tiny / rel).read_bytes() == (out / rel).read_bytes(), rel


def test_different_seed_different_files(tmp_path: Path, tiny: Path) -> None:
    out = tmp_path / "s1"
    _gen(out, seed=1)
    assert _files(out) == _files(tiny)
    for rel in ("game/images/00001.png", "game/labels/00001.png"):
        assert (tiny / rel).read_bytes() != (out / rel).read_bytes()
    real = sorted(str(p.relative_to(tiny)) for p in tiny.glob("real/leftImg8bit/*/*/*.png"))
    assert all((tiny / r).read_bytes() != (out / r).read_bytes() for r in real)


@pytest.mark.parametrize("kwargs, match", [
    (dict(num_source=0), "num_source"),
    (dict(num_target_train=-2), "num_target_train"),
    (dict(num_target_val=1.5), "num_target_val"),
    (dict(source_size="64by32"), "source_size"),
    (dict(target_size="64x"), "target_size"),
    (dict(target_size=(8, 8)), "too small"),
    (dict(workers=0), "workers"),
    (dict(seed=-1), "seed"),
])
def test_bad_arguments(tmp_path: Path, kwargs: dict, match: str) -> None:
    args = dict(source_size=SRC, target_size=TGT, workers=1, **COUNTS)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        generate_synthcity(tmp_path / "bad", **args)
    assert not (tmp_path / "bad").exists()  # nothing written on bad arguments


def test_bad_output_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(OSError, match="a_file"):
        generate_synthcity(blocker, source_size=SRC, target_size=TGT, workers=1, **COUNTS)
    with pytest.raises(OSError, match="a_file"):
        generate_synthcity(blocker / "sub", source_size=SRC, target_size=TGT, workers=1, **COUNTS)


def test_parse_size() -> None:
    assert parse_size("640x360") == (640, 360) and parse_size((512, 256)) == (512, 256)
    with pytest.raises(ValueError, match="malformed"):
        parse_size("640*360")


def test_preview_and_colorize(tiny: Path, tmp_path: Path) -> None:
    lbl = np.array([[7, 23], [26, 0]], np.uint8)
    priv = np.array([[0, 0], [0, 1]], np.uint8)
    rgb = colorize(lbl, priv)
    assert rgb[0, 0].tolist() == [128, 64, 128] and rgb[0, 1].tolist() == [70, 130, 180]
    assert rgb[1, 0].tolist() == [0, 0, 142] and rgb[1, 1].tolist() == [255, 0, 255]
    path = write_preview(tiny, tmp_path / "grid.png", num=2, tile_height=32)
    grid = _read(path, True)
    # two rows of 32-pixel tiles: [game image | game labels | real image | real labels]
    assert grid.shape[0] > 2 * 32 and grid.shape[1] > 2 * 64 + 2 * 48


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli = load_tool("generate_synthcity")
    out = tmp_path / "cli"
    assert cli.main(["--out", str(out), "--source-size", "64x32", "--target-size", "48x32", "--num-source", "1",
                     "--num-target-train", "1", "--num-target-val", "1", "--workers", "1", "--quiet"]) == 0
    assert (out / "game" / "images" / "00001.png").is_file()
    with pytest.raises(SystemExit):
        cli.main(["--out", str(out), "--target-size", "48by32"])
    assert "malformed --target-size" in capsys.readouterr().err
