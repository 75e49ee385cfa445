"""A dataset error through the command-line tools (here a missing data root): one stderr line naming the path,
exit status 2 and no traceback, as a config error gives."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ENV, REPO

CONFIG = REPO / "configs" / "synthcity" / "source_only_lite0.yaml"
MISSING = "/nonexistent"

pytestmark = pytest.mark.slow  # every test starts a Python process


def run_tool(tool: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "tools" / tool), *map(str, args)], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=300)


def assert_one_line_naming(r: subprocess.CompletedProcess, path: str, prefix: str) -> None:
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(prefix) and f"'{path}'" in lines[0], r.stderr
    assert "Traceback" not in r.stdout + r.stderr


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """Untrained weights of CONFIG's model saved as a seg_uda checkpoint (the tools need no trained one here)."""
    from seg_uda.config import load_config
    from seg_uda.builders import build_model
    from seg_uda.evaluation.checkpoint_model import inference_config

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "model.pth"
    torch.save({"model": build_model(inference_config(load_config(CONFIG))).state_dict()}, path)
    return path


def test_train_missing_source_root(tmp_path):
    r = run_tool("train.py", CONFIG, f"data.source.root={MISSING}", "--work-dir", tmp_path / "run", "--no-progress")
    assert_one_line_naming(r, MISSING, "dataset error: ")


def test_evaluate_missing_val_root(checkpoint):
    r = run_tool("evaluate.py", CONFIG, checkpoint, f"data.val.root={MISSING}", "--device", "cpu")
    assert_one_line_naming(r, MISSING, "error: ")


def test_visualize_missing_val_root(checkpoint, tmp_path):
    r = run_tool("visualize.py", CONFIG, checkpoint, f"data.val.root={MISSING}", "--device", "cpu",
                 "--out", tmp_path / "vis")
    assert_one_line_naming(r, MISSING, "error: ")


def test_demo_missing_config_folder(tmp_path):
    r = run_tool("demo.py", "--configs", MISSING, "--out", tmp_path / "demo")
    assert_one_line_naming(r, f"{MISSING}/source_only_lite0.yaml", "demo:")
    assert not (tmp_path / "demo").exists()  # nothing written before the check


def test_train_missing_init_from(tmp_path):
    missing = tmp_path / "no_such_model.pth"
    r = run_tool("train.py", CONFIG, f"model.init_from={missing}", "--work-dir", tmp_path / "run", "--no-progress")
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines == [f"checkpoint error: checkpoint not found: {missing}"], r.stderr
