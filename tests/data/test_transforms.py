"""Transforms: shapes/dtypes, nearest-neighbour labels, flip consistency, padding fill, normalization, worker seeds."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from seg_uda.data import NORMALIZATIONS, build_eval_transform, build_train_transform, normalization


def stripes(h: int = 24, w: int = 32) -> np.ndarray:
    """Label map whose value is the column index mod 7 times 3 (distinct ids 0..18)."""
    return np.tile((np.arange(w) % 7 * 3).astype(np.uint8), (h, 1))


def encode(label: np.ndarray) -> np.ndarray:
    """RGB image carrying the label in every channel (10 * id), so geometry can be checked exactly."""
    return np.repeat((label.astype(np.uint8) * 10)[..., None], 3, axis=2)


def decode(image_t: torch.Tensor, norm: str = "imagenet") -> np.ndarray:
    """Undo normalization -> uint8 HxWx3."""
    mean, std = (torch.tensor(v).view(3, 1, 1) for v in normalization(norm))
    return ((image_t * std + mean) * 255).round().clamp(0, 255).byte().permute(1, 2, 0).numpy()


def test_normalization_values():
    assert set(NORMALIZATIONS) >= {"imagenet", "lite0"}
    img = np.array([[[0, 127, 255]]], dtype=np.uint8)
    x = build_eval_transform(normalize="lite0")(img).image
    assert x[:, 0, 0].tolist() == pytest.approx([-127 / 128, 0.0, 1.0], abs=1e-6)  # (p - 127) / 128
    x = build_eval_transform()(img).image
    mean, std = normalization("imagenet")
    want = [(v / 255 - m) / s for v, m, s in zip((0, 127, 255), mean, std)]
    assert x[:, 0, 0].tolist() == pytest.approx(want, abs=1e-6)
    x = build_eval_transform(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))(img).image
    assert x[:, 0, 0].tolist() == pytest.approx([0.0, 127 / 255, 1.0], abs=1e-6)


def test_normalization_errors():
    with pytest.raises(KeyError, match="imagenet, lite0"):
        normalization("nope")
    with pytest.raises(ValueError, match="both mean and std"):
        build_eval_transform(mean=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="3 values"):
        build_eval_transform(mean=(0.5,), std=(1.0,))


def test_eval_transform_resizes_image_only_by_default():
    label = stripes()
    img = encode(label)
    out = build_eval_transform(size=(16, 12))(img, label)
    assert out.image.shape == (3, 12, 16) and out.image.dtype == torch.float32
    assert out.label.shape == (24, 32) and out.label.dtype == torch.int64
    assert (out.label.numpy() == label).all()
    out = build_eval_transform(size=(20, 13), resize_label=True)(img, label, [label // 3])
    assert out.label.shape == (13, 20) and out.extras[0].shape == (13, 20)
    assert set(np.unique(out.label.numpy())) <= set(np.unique(label))
    assert (out.extras[0] * 3 == out.label).all()  # extras follow the label geometry
    assert build_eval_transform()(img).label is None


def test_train_transform_shapes_and_nearest_labels():
    label = stripes()
    t = build_train_transform(size=(40, 30), crop_size=(24, 16), scale_range=(0.6, 1.7), seed=0)
    for _ in range(10):
        out = t(encode(label), label)
        assert out.image.shape == (3, 16, 24) and out.image.dtype == torch.float32
        assert out.label.shape == (16, 24) and out.label.dtype == torch.int64
        assert set(np.unique(out.label.numpy())) <= set(np.unique(label)) | {255}  # no interpolated ids


def test_train_transform_pads_labels_with_ignore():
    label = stripes(16, 16)
    t = build_train_transform(size=None, crop_size=(16, 16), scale_range=(0.5, 0.5), hflip=False, color_jitter=None,
                              seed=0)
    out = t(encode(label), label)
    lab = out.label.numpy()
    assert (lab[8:, :] == 255).all() and (lab[:, 8:] == 255).all()  # padded area (scaled to 8x8, top-left)
    assert (lab[:8, :8] != 255).all()
    assert (decode(out.image)[8:, :] == 0).all()  # image padded with black


def test_flip_keeps_image_and_label_aligned():
    label = stripes()
    img = encode(label)
    t = build_train_transform(size=None, scale_range=None, hflip=True, color_jitter=None, seed=1)
    flipped = 0
    for _ in range(20):
        out = t(img, label, [label // 3])
        lab = out.label.numpy()
        assert (decode(out.image)[..., 0] == lab * 10).all()
        assert (out.extras[0].numpy() * 3 == lab).all()
        if (lab == label[:, ::-1]).all() and not (lab == label).all():
            flipped += 1
        else:
            assert (lab == label).all()
    assert 0 < flipped < 20


def test_scale_crop_keeps_image_and_label_aligned_on_blocks():
    # 8x8 constant blocks: a nearest-resized label and bilinear image agree away from block borders
    blocks = np.kron(np.arange(16, dtype=np.uint8).reshape(4, 4) + 1, np.ones((8, 8), np.uint8))
    img = encode(blocks)
    t = build_train_transform(size=(32, 32), crop_size=(24, 24), scale_range=(0.9, 1.1), color_jitter=None, seed=3)
    for _ in range(5):
        out = t(img, blocks)
        lab = out.label.numpy()
        dec = decode(out.image)[..., 0].astype(int)
        inside = (lab != 255)
        agree = np.abs(dec - lab.astype(int) * 10) <= 1
        assert agree[inside].mean() > 0.6  # only block-border pixels may differ


def test_color_jitter_changes_image_not_label():
    label = stripes()
    img = np.full(label.shape + (3,), 100, np.uint8)
    img[..., 1] = 150
    t = build_train_transform(size=None, scale_range=None, hflip=False, color_jitter=(0.5, 0.5, 0.5, 0.1),
                              color_jitter_p=1.0, seed=0)
    out = t(img, label)
    assert (out.label.numpy() == label).all()
    assert not (decode(out.image) == img).all()


def test_transform_argument_errors():
    with pytest.raises(ValueError, match="width, height"):
        build_train_transform(size=(10,))
    with pytest.raises(ValueError, match="crop target"):
        build_train_transform(size=None, scale_range=(0.5, 1.5))
    with pytest.raises(ValueError, match="scale_range"):
        build_train_transform(size=(8, 8), scale_range=(1.5, 0.5))
    with pytest.raises(ValueError, match="color_jitter"):
        build_train_transform(size=(8, 8), color_jitter=(0.1, 0.1))
    with pytest.raises(ValueError, match="uint8 RGB"):
        build_eval_transform()(np.zeros((4, 4, 3), np.float32))


class _Repeat(torch.utils.data.Dataset):
    """The same image N times through one transform (to compare augmentations across workers)."""

    def __init__(self, transform, n: int) -> None:
        self.transform, self.n = transform, n
        self.img = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
        self.label = stripes(32, 32)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        out = self.transform(self.img, self.label)
        return out.image, out.label


def test_dataloader_workers_get_different_augmentations():
    torch.manual_seed(0)
    t = build_train_transform(size=None, crop_size=(8, 8), scale_range=(0.7, 1.3), color_jitter=None)
    loader = torch.utils.data.DataLoader(_Repeat(t, 8), batch_size=1, num_workers=2)
    labels = [lab[0] for _, lab in loader]
    # batches alternate between worker 0 (even) and worker 1 (odd); identical RNG states would repeat crops
    same = [torch.equal(labels[i], labels[i + 1]) for i in range(0, 8, 2)]
    assert not all(same)


def test_color_jitter_strength_float_and_zero():
    label = stripes()
    img = np.full(label.shape + (3,), 100, np.uint8)
    img[..., 1] = 150
    plain = dict(size=None, scale_range=None, hflip=False, color_jitter_p=1.0, seed=0)
    assert (decode(build_train_transform(color_jitter=0.0, **plain)(img).image) == img).all()
    assert not (decode(build_train_transform(color_jitter=0.4, **plain)(img).image) == img).all()
    with pytest.raises(ValueError, match="color_jitter"):
        build_train_transform(color_jitter=-0.1, **plain)


def test_set_random_seed_reproduces_augmentation():
    label = stripes()
    t = build_train_transform(size=(32, 24), crop_size=(12, 12), scale_range=(0.5, 1.5), seed=None)
    t.set_random_seed(7)
    a = t(encode(label), label)
    t.set_random_seed(7)
    b = t(encode(label), label)
    assert torch.equal(a.label, b.label) and torch.equal(a.image, b.image)


class _SeededRepeat(_Repeat):
    """Seeds the transform with the index before each item (as the trainer's per-sample seeding does)."""

    def __getitem__(self, i: int):
        self.transform.set_random_seed(1000 + i)
        return super().__getitem__(i)


def test_explicit_seeds_win_over_worker_reseed():
    t = build_train_transform(size=None, crop_size=(8, 8), scale_range=(0.7, 1.3), color_jitter=None)
    runs = []
    for workers in (0, 2):
        loader = torch.utils.data.DataLoader(_SeededRepeat(t, 4), batch_size=1, num_workers=workers)
        runs.append([lab[0] for _, lab in loader])
    assert all(torch.equal(x, y) for x, y in zip(*runs))
