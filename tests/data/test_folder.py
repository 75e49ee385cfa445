"""The folder dataset (any images/ + labels/ tree with a class list): discovery, ids, and its path-safety errors."""
from __future__ import annotations

import os

import pytest

from fixtures_data import make_folder, pattern, rgb_image, write_rgb
from seg_uda.data import DatasetError, FolderDataset


def test_folder_discovery_split_and_identity_labels(tmp_path):
    labels = {"b": pattern([0, 1, 2, 255]), "sub/a": pattern([2, 2, 0, 1])}
    root = make_folder(tmp_path, labels, split="train")
    ds = FolderDataset(root, ["x", "y", "z"], palette=[[1, 2, 3], [4, 5, 6], [7, 8, 9]], split="train")
    assert ds.names == ["b", "sub/a"] and ds.num_classes == 3 and ds.palette[1] == (4, 5, 6)
    assert ds[0]["label"][0, :4].tolist() == [0, 1, 2, 255]
    assert ds[1]["name"] == "sub/a"


def test_folder_rejects_bad_classes_palette_and_ids(tmp_path):
    root = make_folder(tmp_path, {"a": pattern([0, 3])})
    with pytest.raises(DatasetError, match="3 colours but there are 2"):
        FolderDataset(root, ["x", "y"], palette=[[0, 0, 0]] * 3)
    with pytest.raises(DatasetError, match="duplicates"):
        FolderDataset(root, ["x", "x"])
    with pytest.raises(DatasetError, match="escapes the dataset root"):
        FolderDataset(root, ["x", "y", "z"], split="../..")
    with pytest.raises(DatasetError, match=r"a\.png.*3"):
        FolderDataset(root, ["x", "y", "z"])[0]


def test_folder_rejects_path_escape_in_list_file(tmp_path):
    root = make_folder(tmp_path / "data", {"a": pattern([0])})
    make_folder(tmp_path / "other", {"evil": pattern([0])})
    lst = tmp_path / "list.txt"
    for entry in ("../../other/images/evil", str(tmp_path / "other" / "images" / "evil.png"), "sub/../../x"):
        lst.write_text(entry + "\n")
        with pytest.raises(DatasetError, match="escapes the dataset root"):
            FolderDataset(root, ["x"], list_file=lst)
    lst.write_text("a.png\n")
    assert FolderDataset(root, ["x"], list_file=lst).names == ["a"]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_folder_rejects_symlinks_outside_root(tmp_path):
    root = make_folder(tmp_path / "data", {"a": pattern([0])})
    outside = make_folder(tmp_path / "other", {"evil": pattern([0])})
    (root / "images" / "evil.png").symlink_to(outside / "images" / "evil.png")
    (root / "labels" / "evil.png").symlink_to(root / "labels" / "a.png")  # label itself is fine
    with pytest.raises(DatasetError, match="outside the dataset root"):
        FolderDataset(root, ["x"])
    (root / "images" / "evil.png").unlink()
    (root / "labels" / "evil.png").unlink()
    # label symlinked outside
    write_rgb(root / "images" / "evil.png", rgb_image(3))
    (root / "labels" / "evil.png").symlink_to(outside / "labels" / "evil.png")
    with pytest.raises(DatasetError, match="outside the dataset root"):
        FolderDataset(root, ["x"])
    # a symlink that stays inside the root is allowed
    (root / "labels" / "evil.png").unlink()
    (root / "labels" / "evil.png").symlink_to(root / "labels" / "a.png")
    assert FolderDataset(root, ["x"]).names == ["a", "evil"]
