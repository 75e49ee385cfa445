"""Real GTA5 copies: the 24,966-pair release and the 24,941-pair downloads (IAST-ECCV2020#2), the pair count in
the log, and `on_size_mismatch` (raise by default, or resize the image to its label and count it)."""
import logging

import numpy as np
import pytest
from PIL import Image

from fixtures_data import make_gta5, pattern, write_rgb, rgb_image
from seg_uda.config import ConfigError, config_from_dict
from seg_uda.data import DatasetError, GTA5Dataset, SampleFiles
from seg_uda.data.gta5 import FULL_RELEASE_PAIRS, KNOWN_MISSING_IDS

ROAD, CAR = 7, 26  # Cityscapes label ids


def test_known_missing_ids_are_the_25_of_the_24941_copy():
    assert len(KNOWN_MISSING_IDS) == len(set(KNOWN_MISSING_IDS)) == 25
    assert FULL_RELEASE_PAIRS - len(KNOWN_MISSING_IDS) == 24941
    assert {2154, 2158, 4634, 4637, 7115, 7119, 9683, 9688, 12050, 12054} <= set(KNOWN_MISSING_IDS)
    assert not {2153, 2159, 4633, 4638, 7114, 7120, 9682, 9689, 12049, 12055} & set(KNOWN_MISSING_IDS)


def test_full_release_list_works_on_a_copy_without_the_known_missing_frames(tmp_path):
    root = make_gta5(tmp_path / "gta5", {n: pattern([ROAD, CAR]) for n in ("02153", "02159", "12055")})
    full_list = tmp_path / "all.txt"  # as ADVENT's gta5_list/all.txt: lists the 5 frames this copy lacks
    full_list.write_text("".join(f"{i:05d}.png\n" for i in (2153, *range(2154, 2159), 2159, 12055)))
    ds = GTA5Dataset(root, list_file=full_list)
    assert ds.names == ["02153", "02159", "12055"] and len(ds.skipped) == 5
    assert "3 image/label pairs" in ds.summary() and "skipped 5 list entries" in ds.summary()
    assert ds[0]["image"].shape == (3, 8, 16)
    other = tmp_path / "other.txt"
    other.write_text("02153.png\n00001.png\n")  # not a known gap: still an error naming the file
    with pytest.raises(DatasetError, match="00001.png"):
        GTA5Dataset(root, list_file=other)


def test_summary_names_the_copy():
    ds = GTA5Dataset.__new__(GTA5Dataset)  # summary() only reads the sample list: fake 24,941 / 24,966 names
    ds.split, ds.root, ds.with_labels, ds.skipped, ds.on_size_mismatch = "all", "data/GTA5", True, [], "raise"
    missing = set(KNOWN_MISSING_IDS)
    ds.samples = [SampleFiles(f"{i:05d}", None) for i in range(1, 24967) if i not in missing]
    assert ds.summary().startswith("GTA5 'all': 24,941 image/label pairs under data/GTA5 (the known 24,941-pair copy")
    ds.samples = [SampleFiles(f"{i:05d}", None) for i in range(1, 24967)]
    assert ds.summary() == "GTA5 'all': 24,966 image/label pairs under data/GTA5 (the full release)"


def _gta5_source_cfg(synthcity, **method):
    """A config whose data.source is the SynthCity game split read as a GTA5 copy."""
    return config_from_dict({
        "data": {"source": {"type": "gta5", "root": str(synthcity / "game")},
                 "target": {"type": "cityscapes", "root": str(synthcity / "real")},
                 "source_size": [64, 48], "num_workers": 0},
        "model": {"encoder_name": "resnet18", "encoder_weights": None}, "method": method,
    })


def test_training_data_builder_logs_the_pair_count(synthcity, capsys):
    from seg_uda.builders import build_dataset

    build_dataset(_gta5_source_cfg(synthcity, name="source_only"), "source")
    assert f"data.source: GTA5 'all': 4 image/label pairs under {synthcity / 'game'}" in capsys.readouterr().out


def test_class_prior_counts_the_source_without_logging_it_twice(synthcity, capsys):
    from seg_uda.builders import build_method

    cfg = _gta5_source_cfg(synthcity, name="minent", lambda_cp_main=0.01)
    assert build_method(cfg).class_prior.sum().item() == pytest.approx(1.0)
    out = capsys.readouterr().out
    assert "method: source class prior" in out and "data.source:" not in out  # the trainer's loader logs it once


@pytest.fixture
def mismatched(tmp_path):
    """A GTA5 tree whose frame 00002 has a 20x10 image for its 16x8 label."""
    root = make_gta5(tmp_path / "gta5", {"00001": pattern([ROAD, CAR]), "00002": pattern([CAR, ROAD])})
    write_rgb(root / "images" / "00002.png", rgb_image(5, 20, 10))
    return root


def test_size_mismatch_raises_by_default(mismatched):
    ds = GTA5Dataset(mismatched)
    ds[0]
    with pytest.raises(DatasetError, match=r"label '.*00002.png' is 16x8 but its image '.*00002.png' is 20x10"):
        ds[1]


def test_size_mismatch_resize_fits_the_image_to_its_label_and_counts(mismatched, caplog):
    ds = GTA5Dataset(mismatched, on_size_mismatch="resize")
    assert "resized to it and logged" in ds.summary()
    with caplog.at_level(logging.WARNING, logger="seg_uda.data"):
        for _ in range(2):
            s = ds[1]
    assert s["image"].shape == (3, 8, 16) and s["label"].shape == (8, 16)
    assert ds.size_mismatches == 2 and ds[0]["image"].shape == (3, 8, 16) and ds.size_mismatches == 2
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 2 and "is 20x10 but its label is 16x8" in msgs[0] and "2 such image(s) so far" in msgs[1]
    with pytest.raises(DatasetError, match="on_size_mismatch='pad'"):
        GTA5Dataset(mismatched, on_size_mismatch="pad")


def test_on_size_mismatch_is_a_checked_dataset_key(mismatched):
    spec = {"type": "gta5", "root": str(mismatched), "on_size_mismatch": "resize"}
    base = {"model": {"encoder_name": "resnet18"}, "method": {"name": "source_only"}}
    cfg = config_from_dict({**base, "data": {"source": spec}})
    assert cfg.data.source["on_size_mismatch"] == "resize"
    with pytest.raises(ConfigError, match=r"data.source.on_size_mismatch.*raise, resize"):
        config_from_dict({**base, "data": {"source": {**spec, "on_size_mismatch": "crop"}}})


def test_resized_image_keeps_its_content(mismatched):
    img = np.asarray(Image.open(mismatched / "images" / "00002.png").convert("RGB"))
    ds = GTA5Dataset(mismatched, on_size_mismatch="resize")
    arrays = ds.load_arrays(1)
    assert arrays["image"].shape == (8, 16, 3) and arrays["image"].dtype == np.uint8
    assert abs(float(arrays["image"].mean()) - float(img.mean())) < 10
