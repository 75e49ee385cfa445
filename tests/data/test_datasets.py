"""Dataset loaders on tiny fixture trees in each real layout: discovery, id mapping, splits, errors."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from cityscapesscripts.helpers.labels import name2label

from fixtures_data import (
    H, W, make_cityscapes, make_folder, make_gta5, make_idd, make_synthia, pattern, rgb_image, three, write_gray,
    write_palette, write_rgb,
)
from seg_uda.data import (
    CITYSCAPES_CLASSES, CITYSCAPES_PALETTE, DATASETS, SYNTHIA13_CLASSES, SYNTHIA13_IN_16,
    SYNTHIA16_CLASSES, SYNTHIA16_IN_19, CityscapesDataset, DatasetError, FolderDataset, GTA5Dataset, IDDDataset,
    SynthiaDataset, build_dataset, colorize, trainid_to_labelid,
)
from seg_uda.data.labels import LabelMapping, LabelMappingError

CS = CITYSCAPES_CLASSES.index  # train id of a Cityscapes class name


def lid(name: str) -> int:
    """Cityscapes label id of a class name."""
    return name2label[name].id


# ------------------------------------------------------------------------------------------------
# Label tables
# ------------------------------------------------------------------------------------------------
def test_class_lists_and_subsets():
    assert len(CITYSCAPES_CLASSES) == 19 and len(SYNTHIA16_CLASSES) == 16 and len(SYNTHIA13_CLASSES) == 13
    assert [CITYSCAPES_CLASSES[i] for i in SYNTHIA16_IN_19] == list(SYNTHIA16_CLASSES)
    assert not {"terrain", "truck", "train"} & set(SYNTHIA16_CLASSES)
    assert [SYNTHIA16_CLASSES[i] for i in SYNTHIA13_IN_16] == list(SYNTHIA13_CLASSES)
    assert not {"wall", "fence", "pole"} & set(SYNTHIA13_CLASSES)
    assert CITYSCAPES_PALETTE[CS("car")] == name2label["car"].color


def test_colorize_and_trainid_to_labelid():
    ids = np.array([[CS("road"), CS("car"), 255, -1]])
    rgb = colorize(ids)
    assert rgb.dtype == np.uint8 and rgb.shape == (1, 4, 3)
    assert tuple(rgb[0, 0]) == name2label["road"].color and tuple(rgb[0, 1]) == name2label["car"].color
    assert tuple(rgb[0, 2]) == (0, 0, 0) and tuple(rgb[0, 3]) == (0, 0, 0)
    assert trainid_to_labelid(ids).tolist() == [[lid("road"), lid("car"), 0, 0]]
    # 16-class predictions: index of 'car' in the SYNTHIA space
    assert trainid_to_labelid(np.array([[SYNTHIA16_CLASSES.index("car")]]), num_classes=16).tolist() == [[lid("car")]]
    # round trip over all 19 classes
    assert trainid_to_labelid(np.arange(19)).tolist() == [name2label[n].id for n in CITYSCAPES_CLASSES]


def test_label_mapping_rejects_unknown_and_16bit_overflow():
    m = LabelMapping({0: 5, 1: 6}, name="toy")
    assert m(np.array([[0, 1]], np.uint8)).tolist() == [[5, 6]]
    assert m(np.array([[1, 0]], np.uint16)).tolist() == [[6, 5]]
    with pytest.raises(LabelMappingError, match=r"'f\.png'.*2"):
        m(np.array([[0, 2]], np.uint8), "f.png")
    with pytest.raises(LabelMappingError, match="300"):
        m(np.array([[0, 300]], np.uint16), "f.png")


# ------------------------------------------------------------------------------------------------
# GTA5
# ------------------------------------------------------------------------------------------------
GTA_IDS = [lid("road"), lid("car"), 0, 255, lid("sidewalk"), lid("bicycle"), lid("terrain"), lid("parking")]


def test_gta5_discovery_sorting_and_mapping(tmp_path):
    root = make_gta5(tmp_path, three(GTA_IDS, ["00003", "00001", "00002"]))
    ds = GTA5Dataset(root)
    assert len(ds) == 3 and ds.names == ["00001", "00002", "00003"]
    s = ds[0]
    assert s["name"] == "00001"
    assert s["image"].dtype == torch.float32 and s["image"].shape == (3, H, W)
    assert s["label"].dtype == torch.int64 and s["label"].shape == (H, W)
    expected = [CS("road"), CS("car"), 255, 255, CS("sidewalk"), CS("bicycle"), CS("terrain"), 255]
    assert s["label"][0, : len(expected)].tolist() == expected
    assert (s["label"] == torch.from_numpy(pattern(expected))).all()  # every row, every column


def test_gta5_default_transform_is_imagenet_normalization(tmp_path):
    root = make_gta5(tmp_path, three(GTA_IDS, ["00001"]))
    img = rgb_image(0)
    x = GTA5Dataset(root)[0]["image"]
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    for c in range(3):
        want = (img[2, 5, c] / 255.0 - mean[c]) / std[c]
        assert x[c, 2, 5].item() == pytest.approx(want, abs=1e-5)


def test_gta5_16_classes(tmp_path):
    root = make_gta5(tmp_path, three([lid("car"), lid("terrain"), lid("bus"), lid("truck")], ["00001"]))
    lab = GTA5Dataset(root, num_classes=16)[0]["label"]
    idx = SYNTHIA16_CLASSES.index
    assert lab[0, :4].tolist() == [idx("car"), 255, idx("bus"), 255]


def test_gta5_list_file_overrides_and_split(tmp_path):
    root = make_gta5(tmp_path / "gta", three(GTA_IDS, ["00001", "00002", "00003"]))
    lst = tmp_path / "list.txt"
    lst.write_text("# subset\n00003.png\n\n00001\n")
    ds = GTA5Dataset(root, list_file=lst)
    assert ds.names == ["00003", "00001"]
    with pytest.raises(DatasetError, match="no built-in split 'train'"):
        GTA5Dataset(root, split="train")
    lst.write_text("00009.png\n")
    with pytest.raises(DatasetError, match="00009"):
        GTA5Dataset(root, list_file=lst)


def test_gta5_without_labels(tmp_path):
    root = make_gta5(tmp_path, three(GTA_IDS, ["00001"]))
    s = GTA5Dataset(root, with_labels=False)[0]
    assert "label" not in s and s["image"].shape == (3, H, W)


def test_gta5_out_of_mapping_id_names_file_and_id(tmp_path):
    root = make_gta5(tmp_path, {"00001": pattern([lid("road"), 200, 34])})
    ds = GTA5Dataset(root)  # cheap construction does not decode
    with pytest.raises(DatasetError) as err:
        ds[0]
    msg = str(err.value)
    assert "00001.png" in msg and "200" in msg and "34" in msg


def test_missing_root_names_root(tmp_path):
    missing = tmp_path / "nope"
    for cls in (GTA5Dataset, SynthiaDataset, CityscapesDataset, IDDDataset):
        with pytest.raises(DatasetError, match=str(missing)):
            cls(missing)
    with pytest.raises(DatasetError, match=str(missing)):
        FolderDataset(missing, class_names=["a"])


def test_empty_split_names_root_and_split(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    with pytest.raises(DatasetError) as err:
        GTA5Dataset(tmp_path)
    assert str(tmp_path) in str(err.value) and "'all'" in str(err.value)
    (tmp_path / "leftImg8bit" / "val").mkdir(parents=True)
    (tmp_path / "gtFine" / "val").mkdir(parents=True)
    with pytest.raises(DatasetError) as err:
        CityscapesDataset(tmp_path, split="val")
    assert str(tmp_path) in str(err.value) and "'val'" in str(err.value)
    with pytest.raises(DatasetError, match="split 'test' dir"):
        CityscapesDataset(tmp_path, split="test")


def test_missing_label_names_file(tmp_path):
    root = make_gta5(tmp_path, three(GTA_IDS, ["00001", "00002"]))
    (root / "labels" / "00002.png").unlink()
    with pytest.raises(DatasetError, match=r"00002\.png"):
        GTA5Dataset(root)


def test_size_mismatch_names_both_files(tmp_path):
    root = make_gta5(tmp_path, three(GTA_IDS, ["00001"]))
    write_palette(root / "labels" / "00001.png", np.zeros((H + 2, W), np.uint8))
    ds = GTA5Dataset(root)
    with pytest.raises(DatasetError) as err:
        ds[0]
    msg = str(err.value)
    assert str(root / "labels" / "00001.png") in msg and str(root / "images" / "00001.png") in msg


def test_corrupt_image_and_label_bytes(tmp_path):
    root = make_gta5(tmp_path, three(GTA_IDS, ["00001", "00002"]))
    (root / "images" / "00001.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (root / "labels" / "00002.png").write_bytes(b"not a png at all")
    ds = GTA5Dataset(root)
    with pytest.raises(DatasetError, match=r"images[/\\]00001\.png"):
        ds[0]
    with pytest.raises(DatasetError, match=r"labels[/\\]00002\.png"):
        ds[1]


def test_rgb_label_rejected(tmp_path):
    root = make_gta5(tmp_path, three(GTA_IDS, ["00001"]))
    write_rgb(root / "labels" / "00001.png", rgb_image(0))
    with pytest.raises(DatasetError, match="single-channel"):
        GTA5Dataset(root)[0]


# ------------------------------------------------------------------------------------------------
# SYNTHIA
# ------------------------------------------------------------------------------------------------
# SYNTHIA ids: 3 road, 8 car, 21 wall, 16 terrain, 0 void, 10 pedestrian, 22 lanemarking, 1 sky
SYN_IDS = [3, 8, 21, 16, 0, 10, 22, 1]


def test_synthia_16bit_labels_in_r_channel(tmp_path):
    root = make_synthia(tmp_path, three(SYN_IDS, ["0000002", "0000000", "0000001"]))
    ds = SynthiaDataset(root)
    assert ds.names == ["0000000", "0000001", "0000002"] and ds.num_classes == 16
    idx = SYNTHIA16_CLASSES.index
    want = [idx("road"), idx("car"), idx("wall"), 255, 255, idx("person"), 255, idx("sky")]
    lab = ds[1]["label"]
    assert lab.shape == (H, W) and (lab == torch.from_numpy(pattern(want))).all()


def test_synthia_19_classes_and_unknown_id(tmp_path):
    root = make_synthia(tmp_path, {"0000000": pattern(SYN_IDS), "0000001": pattern([3, 300])})
    ds = SynthiaDataset(root, num_classes=19)
    want = [CS("road"), CS("car"), CS("wall"), CS("terrain"), 255, CS("person"), 255, CS("sky")]
    assert ds[0]["label"][0, :8].tolist() == want
    with pytest.raises(DatasetError, match=r"0000001\.png.*300"):
        ds[1]
    with pytest.raises(ValueError, match="19 or 16"):
        SynthiaDataset(root, num_classes=13)


# ------------------------------------------------------------------------------------------------
# Cityscapes
# ------------------------------------------------------------------------------------------------
CITY_IDS = [lid("road"), lid("car"), 0, lid("truck"), lid("terrain"), lid("sky"), lid("rider"), lid("wall")]
CITY_NAMES = ["zurich/zurich_000000_000019", "aachen/aachen_000001_000019", "aachen/aachen_000000_000019"]


def test_cityscapes_discovery_and_19_classes(tmp_path):
    root = make_cityscapes(tmp_path, "train", three(CITY_IDS, CITY_NAMES))
    make_cityscapes(tmp_path, "val", three(CITY_IDS, ["lindau/lindau_000000_000019"]))
    ds = CityscapesDataset(root)
    assert ds.names == sorted(CITY_NAMES)
    s = ds[0]
    assert s["name"] == "aachen/aachen_000000_000019" and "private" not in s
    want = [CS("road"), CS("car"), 255, CS("truck"), CS("terrain"), CS("sky"), CS("rider"), CS("wall")]
    assert (s["label"] == torch.from_numpy(pattern(want))).all()
    assert CityscapesDataset(root, split="val").names == ["lindau/lindau_000000_000019"]


def test_cityscapes_16_classes(tmp_path):
    root = make_cityscapes(tmp_path, "val", three(CITY_IDS, CITY_NAMES[:1]))
    ds = CityscapesDataset(root, split="val", num_classes=16)
    assert ds.class_names == SYNTHIA16_CLASSES
    idx = SYNTHIA16_CLASSES.index
    assert ds[0]["label"][0, :8].tolist() == [idx("road"), idx("car"), 255, 255, 255,
                                              idx("sky"), idx("rider"), idx("wall")]


def test_cityscapes_list_file_advent_style(tmp_path):
    root = make_cityscapes(tmp_path / "cs", "train", three(CITY_IDS, CITY_NAMES))
    lst = tmp_path / "train.txt"
    lst.write_text("zurich/zurich_000000_000019_leftImg8bit.png\naachen/aachen_000000_000019\n")
    assert CityscapesDataset(root, list_file=lst).names == ["zurich/zurich_000000_000019",
                                                            "aachen/aachen_000000_000019"]
    lst.write_text("../../etc/passwd\n")
    with pytest.raises(DatasetError, match="escapes"):
        CityscapesDataset(root, list_file=lst)


def test_cityscapes_without_labels_needs_no_gtfine(tmp_path):
    root = make_cityscapes(tmp_path, "test", three(CITY_IDS, CITY_NAMES[:2]))
    shutil.rmtree(root / "gtFine")
    ds = CityscapesDataset(root, split="test", with_labels=False)
    s = ds[1]
    assert "label" not in s and s["name"] == "zurich/zurich_000000_000019"
    with pytest.raises(DatasetError, match="label dir"):
        CityscapesDataset(root, split="test")


def test_cityscapes_private_ids(tmp_path):
    priv = np.zeros((H, W), np.uint8)
    priv[:, 0] = 1  # animal over a road column
    priv[:, 1] = 2  # tuk-tuk over a car column
    name = CITY_NAMES[0]
    root = make_cityscapes(tmp_path, "val", three(CITY_IDS, [name]), private={name: priv})
    s = CityscapesDataset(root, split="val", load_private=True)[0]
    assert s["private"].dtype == torch.int64 and (s["private"] == torch.from_numpy(priv)).all()
    assert (s["label"][:, :2] == 255).all()  # private pixels are ignore in the closed label set
    assert s["label"][0, 5].item() == CS("sky")


def test_cityscapes_private_errors(tmp_path):
    name = CITY_NAMES[0]
    root = make_cityscapes(tmp_path, "val", three(CITY_IDS, [name]))
    with pytest.raises(DatasetError, match="privateIds"):
        CityscapesDataset(root, split="val", load_private=True)
    write_gray(root / "gtFine" / "val" / f"{name}_gtFine_privateIds.png", np.full((H, W), 3, np.uint8))
    with pytest.raises(DatasetError, match=r"privateIds\.png.*3"):
        CityscapesDataset(root, split="val", load_private=True)[0]


def test_dataloader_collates_batches(tmp_path):
    root = make_cityscapes(tmp_path, "train", three(CITY_IDS, CITY_NAMES))
    batch = next(iter(torch.utils.data.DataLoader(CityscapesDataset(root), batch_size=2)))
    assert batch["image"].shape == (2, 3, H, W) and batch["label"].shape == (2, H, W)
    assert batch["name"] == ["aachen/aachen_000000_000019", "aachen/aachen_000001_000019"]


# ------------------------------------------------------------------------------------------------
# IDD
# ------------------------------------------------------------------------------------------------
# level3: 0 road, 8 autorickshaw, 4 person, 25 sky, 255 void, 9 car, 1 drivable fallback, 22 building
IDD_L3 = [0, 8, 4, 25, 255, 9, 1, 22]


def test_idd_level3_mapping_and_private(tmp_path):
    root = make_idd(tmp_path, "val", three(IDD_L3, ["201/frame0029", "0/005626"]))
    ds = IDDDataset(root, split="val", load_private=True)
    assert ds.names == ["0/005626", "201/frame0029"]
    s = ds[0]
    want = [CS("road"), 255, CS("person"), CS("sky"), 255, CS("car"), 255, CS("building")]
    assert (s["label"] == torch.from_numpy(pattern(want))).all()
    assert (s["private"] == torch.from_numpy(pattern([0, 2, 0, 0, 0, 0, 0, 0]))).all()
    assert "private" not in IDDDataset(root, split="val")[0]


def test_idd_full_ids_animal_private_and_jpg(tmp_path):
    # ids column: 7 animal, 11 autorickshaw, 12 car, 6 person, 33 sky
    root = make_idd(tmp_path, "train", three([7, 11, 12, 6, 33], ["3/000123"]), label_type="ids", image_ext=".jpg")
    s = IDDDataset(root, label_type="ids", load_private=True)[0]
    assert s["label"][0, :5].tolist() == [255, 255, CS("car"), CS("person"), CS("sky")]
    assert s["private"][0, :5].tolist() == [1, 2, 0, 0, 0]


def test_idd_unknown_level3_id(tmp_path):
    root = make_idd(tmp_path, "val", {"0/000001": pattern([0, 26])})
    with pytest.raises(DatasetError, match=r"labellevel3Ids\.png.*26"):
        IDDDataset(root, split="val")[0]
    with pytest.raises(ValueError, match="label_type"):
        IDDDataset(root, split="val", label_type="level2Ids")


# ------------------------------------------------------------------------------------------------
# Registry
# ------------------------------------------------------------------------------------------------
def test_registry_builds_every_dataset(tmp_path):
    assert DATASETS.names() == ["cityscapes", "folder", "gta5", "idd", "synthia"]
    root = make_gta5(tmp_path / "g", three(GTA_IDS, ["00001"]))
    assert isinstance(build_dataset("gta5", root=root), GTA5Dataset)
    root = make_folder(tmp_path / "f", {"a": pattern([0])})
    assert len(build_dataset("folder", root=root, class_names=["x"])) == 1
    with pytest.raises(KeyError, match="gta5"):
        build_dataset("gta", root=root)


def test_custom_two_argument_transform(tmp_path):
    root = make_gta5(tmp_path, three(GTA_IDS, ["00001"]))

    def to_tensors(image, label):
        return torch.from_numpy(image).permute(2, 0, 1).float(), torch.from_numpy(label).long()

    s = GTA5Dataset(root, transform=to_tensors)[0]
    assert (s["image"] == torch.from_numpy(rgb_image(0)).permute(2, 0, 1).float()).all()
    assert s["label"][0, 0].item() == CS("road")
