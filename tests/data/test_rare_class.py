"""Rare-class sampling (DAFormer RCS): label counts and their cache, class probabilities, the sampler's distribution
and determinism (resume, ranks), the loader hook, the builder and the config keys."""
import math
import os
from itertools import islice

import numpy as np
import pytest
import torch

from fixtures_data import make_gta5
from seg_uda.builders import build_source_sampler
from seg_uda.config import ConfigError, config_from_dict
from seg_uda.data import GTA5Dataset
from seg_uda.data.openset import OpenSetDataset, OpenSetProtocol
from seg_uda.data.rare_class import CACHE_DIR, RareClassSampler, class_pixel_counts, rcs_class_probs
from seg_uda.runtime.sampling import InfiniteStreamSampler, infinite_loader

ROAD, SIDEWALK, BUILDING, CAR, BICYCLE = 0, 1, 2, 13, 18  # train ids (Cityscapes label ids 7, 8, 11, 26, 33)


def ids(**pixels):
    """A 16x8 Cityscapes-label-id map: the first pixels (row-major) hold the given label ids, the rest 'unlabeled'."""
    flat = np.zeros(128, dtype=np.int64)
    at = 0
    for label_id, n in pixels.items():
        flat[at:at + n] = int(label_id[1:])
        at += n
    return flat.reshape(8, 16)


LABELS = {"00001": ids(c7=100, c26=28), "00002": ids(c7=120, c33=8), "00003": ids(c11=64)}
EXPECTED = np.zeros((3, 19), dtype=np.int64)
EXPECTED[0, [ROAD, CAR]] = 100, 28
EXPECTED[1, [ROAD, BICYCLE]] = 120, 8
EXPECTED[2, BUILDING] = 64


@pytest.fixture
def gta(tmp_path):
    return GTA5Dataset(make_gta5(tmp_path / "gta", LABELS))


def cache_files(ds):
    return sorted((ds.root / CACHE_DIR).glob("rcs_*.npz"))


def take(sampler, n):
    return list(islice(iter(sampler), n))


# ------------------------------------------------------------------------------------------------ counts
def test_counts_read_the_labels_only(gta, monkeypatch):
    monkeypatch.setattr("seg_uda.data.base.read_image", lambda p: pytest.fail("decoded an image"))
    counts = class_pixel_counts(gta, 19, cache=False)
    assert counts.dtype == np.int64 and counts.shape == (3, 19)
    np.testing.assert_array_equal(counts, EXPECTED)  # unlabeled (-> 255) is not counted
    assert gta.load_train_ids(2).shape == (8, 16)


def test_counts_of_a_minimal_dataset_object():
    class Fake:
        def __len__(self):
            return 2

        def load_train_ids(self, i):
            return np.array([[0, 1, 255], [1, 1, 7]], dtype=np.uint8) if i == 0 else np.full((2, 2), 2, np.uint8)

    np.testing.assert_array_equal(class_pixel_counts(Fake(), 3), [[1, 3, 0], [0, 0, 4]])  # 7 >= num_classes: dropped


def test_counts_of_an_open_set_source(gta):
    protocol = OpenSetProtocol(19, ["car"])
    counts = class_pixel_counts(OpenSetDataset(gta, protocol, "source"), protocol.num_known)
    assert counts.shape == (3, 18)
    np.testing.assert_array_equal(counts, np.delete(EXPECTED, CAR, axis=1))  # car ignored, bicycle -> 17
    with pytest.raises(ValueError, match="open-set"):
        class_pixel_counts(OpenSetDataset(gta, protocol, "target"), protocol.num_known + 1)


def test_cache_is_written_reused_and_invalidated(gta, monkeypatch):
    np.testing.assert_array_equal(class_pixel_counts(gta, 19), EXPECTED)
    (first,) = cache_files(gta)
    with monkeypatch.context() as m:  # a second call must not read any label
        m.setattr(type(gta), "load_train_ids", lambda self, i: pytest.fail("cache not used"))
        np.testing.assert_array_equal(class_pixel_counts(gta, 19), EXPECTED)
    assert cache_files(gta) == [first]

    label = gta.samples[1].label
    make_gta5(gta.root, {"00002": ids(c7=100, c33=28)})  # a changed label file
    st = os.stat(label)
    os.utime(label, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    expected = EXPECTED.copy()
    expected[1, [ROAD, BICYCLE]] = 100, 28
    np.testing.assert_array_equal(class_pixel_counts(gta, 19), expected)
    assert len(cache_files(gta)) == 2
    with monkeypatch.context() as m:  # another num_classes is another cache entry
        m.setattr(type(gta), "load_train_ids", lambda self, i: np.zeros((2, 2), np.uint8))
        assert class_pixel_counts(gta, 16).shape == (3, 16)
    assert len(cache_files(gta)) == 3


def test_unwritable_cache_dir_is_not_fatal(gta):
    (gta.root / CACHE_DIR).write_text("a file where the cache dir should be")
    np.testing.assert_array_equal(class_pixel_counts(gta, 19), EXPECTED)
    np.testing.assert_array_equal(class_pixel_counts(gta, 19), EXPECTED)


# ------------------------------------------------------------------------------------------------ probabilities
@pytest.mark.parametrize("temperature", [0.01, 0.1, 1.0])
def test_class_probs_match_daformer_formula(temperature):
    classes, probs = rcs_class_probs(EXPECTED, temperature)
    assert classes.tolist() == [ROAD, BUILDING, CAR, BICYCLE]
    total = 220 + 64 + 28 + 8
    logits = [(1 - n / total) / temperature for n in (220, 64, 28, 8)]
    z = sum(math.exp(v) for v in logits)
    np.testing.assert_allclose(probs, [math.exp(v) / z for v in logits], rtol=1e-12)
    with pytest.raises(ValueError, match="positive"):
        rcs_class_probs(EXPECTED, 0.0)


# ------------------------------------------------------------------------------------------------ sampler
def synthetic_counts(n=40, seed=0):
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 5000, size=(n, 6)) * (rng.random((n, 6)) < 0.5)
    counts[:, 0] = 200_000  # a dominant class in every image
    counts[:, 5] = 0
    counts[3, 5] = 100  # present, but in no image with >= min_pixels: dropped
    return counts


def test_sampler_draws_classes_with_p_and_images_holding_them():
    counts = synthetic_counts()
    sampler = RareClassSampler(counts, temperature=0.02, min_pixels=1000, seed=5)
    classes, probs = rcs_class_probs(counts, 0.02)
    assert 5 in classes and 5 not in sampler.classes
    keep = classes != 5
    np.testing.assert_allclose(sampler.probs, probs[keep] / probs[keep].sum())
    draws = [sampler.draw(pos) for pos in range(20_000)]
    freq = np.array([sum(c == k for c, _ in draws) for k in sampler.classes]) / len(draws)
    np.testing.assert_allclose(freq, sampler.probs, atol=0.015)
    assert all(counts[i, c] >= 1000 for c, i in draws)
    images_of_1 = {i for c, i in draws if c == 1}
    assert images_of_1 == set(np.flatnonzero(counts[:, 1] >= 1000).tolist())  # uniform over qualifying images


def test_sampler_is_a_pure_function_of_seed_and_position():
    counts = synthetic_counts()
    a = RareClassSampler(counts, 0.05, 1000, seed=3)
    b = RareClassSampler(counts, 0.05, 1000, seed=3)
    assert [a.draw(p) for p in (0, 7, 123456)] == [b.draw(p) for p in (123456, 7, 0)][::-1]
    assert take(a, 50) != take(RareClassSampler(counts, 0.05, 1000, seed=4), 50)

    full = take(a, 30)
    assert take(RareClassSampler(counts, 0.05, 1000, seed=3, start=12), 18) == full[12:]
    r0 = take(RareClassSampler(counts, 0.05, 1000, seed=3, rank=0, world_size=2), 15)
    r1 = take(RareClassSampler(counts, 0.05, 1000, seed=3, rank=1, world_size=2), 15)
    assert [x for pair in zip(r0, r1) for x in pair] == full
    r1_resumed = take(RareClassSampler(counts, 0.05, 1000, seed=3, rank=1, world_size=2, start=6), 9)
    assert r1_resumed == r1[6:]
    stream_seeds = [s for _, s in take(InfiniteStreamSampler(len(counts), seed=3), 30)]
    assert [s for _, s in full] == stream_seeds  # same per-sample augmentation seeds as the uniform stream


def test_sampler_rejects_unusable_counts():
    with pytest.raises(ValueError, match="rcs_min_pixels"):
        RareClassSampler(np.full((3, 2), 10), 0.01, min_pixels=100)
    with pytest.raises(ValueError, match="empty"):
        RareClassSampler(np.zeros((0, 2)), 0.01)


def test_infinite_loader_takes_the_sampler():
    class Indexed(torch.utils.data.Dataset):
        def __len__(self):
            return 40

        def __getitem__(self, i):
            return {"index": i}

    sampler = RareClassSampler(synthetic_counts(), 0.05, 1000, seed=2, start=4)
    batches = list(islice(infinite_loader(Indexed(), 2, 2, 0, 1, start_batch=2, sampler=sampler), 3))
    got = [int(i) for b in batches for i in b["index"]]
    assert got == [i for i, _ in take(RareClassSampler(synthetic_counts(), 0.05, 1000, seed=2), 10)][4:]


# ------------------------------------------------------------------------------------------------ builder / config
def cfg_dict(root, **data):
    return {"name": "t", "data": {"source": {"type": "gta5", "root": str(root)}, "target": None, "val": None, **data},
            "model": {"name": "deeplabv2", "encoder_name": "resnet18", "multi_level": False},
            "method": {"name": "source_only"}}


def test_builder_returns_sampler_only_when_enabled(gta, capsys):
    assert build_source_sampler(config_from_dict(cfg_dict(gta.root)), gta, 0, 0, 1, 0) is None
    cfg = config_from_dict(cfg_dict(gta.root, rcs_temperature=0.01, rcs_min_pixels=8))
    sampler = build_source_sampler(cfg, gta, 7, 1, 2, 3)
    assert isinstance(sampler, RareClassSampler)
    assert (sampler.seed, sampler.rank, sampler.world_size, sampler.start) == (7, 1, 2, 3)
    assert capsys.readouterr().out == ""  # rank 1 stays quiet
    build_source_sampler(cfg, gta, 7, 0, 2, 3)
    line = capsys.readouterr().out
    assert "rare-class sampling" in line and "bicycle" in line and line.count("\n") == 1


@pytest.mark.parametrize("key, value, match", [
    ("rcs_temperature", 0, "'data.rcs_temperature' must be positive"),
    ("rcs_temperature", -0.01, "'data.rcs_temperature' must be positive"),
    ("rcs_temperature", "hot", "'data.rcs_temperature'"),
    ("rcs_min_pixels", -1, "'data.rcs_min_pixels' must be >= 0"),
])
def test_config_validation(tmp_path, key, value, match):
    with pytest.raises(ConfigError, match=match) as e:
        config_from_dict(cfg_dict(tmp_path, **{key: value}))
    assert "\n" not in str(e.value)


def test_config_defaults(tmp_path):
    cfg = config_from_dict(cfg_dict(tmp_path))
    assert cfg.data.rcs_temperature is None and cfg.data.rcs_min_pixels == 3000
