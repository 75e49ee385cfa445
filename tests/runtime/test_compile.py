"""schedule.compile: the compiled training step computes the same model as the eager one, checkpoints are the
eager model's, and a bad backend name fails clearly."""
import pytest
import torch
from torch import nn

from conftest import tiny_cfg_dict
from seg_uda.config import config_from_dict
from seg_uda.engine.trainer import Trainer
from seg_uda.runtime.compile import compile_module


def _losses(synthcity, tmp_path, **schedule):
    cfg = config_from_dict(tiny_cfg_dict(synthcity, "advent", schedule={"max_iters": 3, **schedule}))
    trainer = Trainer(cfg, work_dir=tmp_path, progress=False)
    out = []
    for _ in range(3):
        out.append(trainer.run_step())
        trainer.iteration += 1
    return out, trainer


def test_compiled_step_matches_eager(synthcity, tmp_path):
    # aot_eager traces the forward and derives the backward with AOTAutograd (what inductor compiles) without
    # generating code, which takes minutes on a CPU; bench/gpu_advent.sh times inductor on a GPU.
    eager, _ = _losses(synthcity, tmp_path / "eager")
    compiled, trainer = _losses(synthcity, tmp_path / "compiled", compile=True, compile_backend="aot_eager")
    assert trainer.train_model is not trainer.model
    for e, c in zip(eager, compiled):  # three steps: the updates agree too, not only the first forward
        assert e.keys() == c.keys()
        for k in e:
            assert c[k] == pytest.approx(e[k], rel=1e-4, abs=1e-6), k
    keys = trainer.state_dict()["model"].keys()
    assert not any("_orig_mod" in k for k in keys)  # checkpoints hold the eager module's names


def test_unknown_backend_names_the_key(synthcity, tmp_path):
    cfg = config_from_dict(tiny_cfg_dict(synthcity, "source_only",
                                         schedule={"compile": True, "compile_backend": "no_such_backend"}))
    with pytest.raises(ValueError, match="schedule.compile_backend='no_such_backend'"):
        Trainer(cfg, work_dir=tmp_path, progress=False)


@pytest.mark.slow
def test_inductor_matches_eager_on_a_small_block():
    # inductor's C++ code generation on the CPU, on a conv-BN-ReLU block (the full models take minutes to compile)
    torch.manual_seed(0)
    block = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 4, 1))
    x = torch.randn(2, 3, 16, 16)
    ref = block(x)
    ref.square().mean().backward()
    ref_grads = [p.grad.clone() for p in block.parameters()]
    block.zero_grad()
    out = compile_module(block, "inductor")(x)
    out.square().mean().backward()
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    for p, g in zip(block.parameters(), ref_grads):
        torch.testing.assert_close(p.grad, g, rtol=1e-4, atol=1e-5)
