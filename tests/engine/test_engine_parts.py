"""Engine building blocks: LR schedule, checkpoints, resumable sampling."""
import warnings

import pytest
import torch

from seg_uda.runtime.checkpoint import CheckpointError, CheckpointManager, atomic_save, load_checkpoint
from seg_uda.engine.lr import PolyLR, poly_lr_factor
from seg_uda.runtime.sampling import InfiniteStreamSampler, shard_indices


def test_poly_lr_matches_formula():
    assert poly_lr_factor(0, 100) == 1.0
    assert poly_lr_factor(50, 100, power=0.9) == pytest.approx(0.5 ** 0.9)
    assert poly_lr_factor(100, 100) == 0.0
    # warmup: starts at warmup_ratio and rises linearly, multiplied by the poly factor
    assert poly_lr_factor(0, 100, warmup_iters=10, warmup_ratio=0.1) == pytest.approx(0.1)
    assert poly_lr_factor(5, 100, warmup_iters=10, warmup_ratio=0.1) == pytest.approx(0.95 ** 0.9 * 0.55)


def test_poly_lr_keeps_group_ratios():
    p1, p2 = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [p1], "lr": 1.0}, {"params": [p2], "lr": 10.0}], lr=1.0)
    sched = PolyLR(opt, max_iters=10, power=1.0)
    sched.set_iteration(5)
    assert sched.get_lr() == pytest.approx([0.5, 5.0])


def _state(i):
    return {"model": {"w": torch.full((2,), float(i))}, "iteration": i}


def test_checkpoint_rotation_and_last(tmp_path):
    mgr = CheckpointManager(tmp_path, keep_last=2)
    for i in (1, 2, 3):
        mgr.save(_state(i), i)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["iter_0000002.pth", "iter_0000003.pth", "last.pth"]
    state, path = mgr.load_latest()
    assert path.name == "last.pth" and state["iteration"] == 3


def test_atomic_save_leaves_no_temp_files(tmp_path):
    atomic_save(_state(1), tmp_path / "x.pth")
    assert [p.name for p in tmp_path.iterdir()] == ["x.pth"]


def test_truncated_checkpoint_error_names_file_and_falls_back(tmp_path):
    mgr = CheckpointManager(tmp_path, keep_last=3)
    mgr.save(_state(1), 1)
    mgr.save(_state(2), 2)
    last = tmp_path / "last.pth"
    last.write_bytes(last.read_bytes()[:100])  # truncate
    with pytest.raises(CheckpointError, match="last.pth"):
        load_checkpoint(last)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        state, path = mgr.load_latest()
    assert path.name == "iter_0000002.pth" and state["iteration"] == 2
    assert any("last.pth" in str(x.message) for x in w)


def test_checkpoint_with_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"model": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="evil.pth"):
        load_checkpoint(tmp_path / "evil.pth")


def _take(it, n):
    return [next(it) for _ in range(n)]


def test_sampler_is_deterministic_and_covers_each_epoch():
    a = _take(iter(InfiniteStreamSampler(7, seed=3)), 14)
    b = _take(iter(InfiniteStreamSampler(7, seed=3)), 14)
    assert a == b
    assert sorted(i for i, _ in a[:7]) == list(range(7)) and sorted(i for i, _ in a[7:]) == list(range(7))
    assert a[:7] != a[7:]  # a fresh permutation per epoch
    assert len({s for _, s in a}) == 14  # every draw has its own augmentation seed


def test_two_ranks_interleave_to_the_single_process_stream():
    single = _take(iter(InfiniteStreamSampler(5, seed=1)), 10)
    r0 = _take(iter(InfiniteStreamSampler(5, seed=1, rank=0, world_size=2)), 5)
    r1 = _take(iter(InfiniteStreamSampler(5, seed=1, rank=1, world_size=2)), 5)
    assert single[0::2] == r0 and single[1::2] == r1


def test_sampler_resumes_mid_stream():
    full = _take(iter(InfiniteStreamSampler(6, seed=0)), 9)
    assert _take(iter(InfiniteStreamSampler(6, seed=0, start=4)), 5) == full[4:]


def test_shard_indices_partition():
    shards = [shard_indices(10, r, 3) for r in range(3)]
    assert sorted(sum(shards, [])) == list(range(10))
    assert shard_indices(10, 0, 1, limit=4) == [0, 1, 2, 3]
