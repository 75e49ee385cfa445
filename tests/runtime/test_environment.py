"""seg_uda/runtime/environment.py: the machine record saved beside each run's config."""
import json

import torch

from seg_uda.runtime.environment import _ISA_FLAGS, describe_environment, record_environment


def test_describe_environment_names_cpu_threads_and_versions(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    info = describe_environment()
    assert isinstance(info["cpu"], str) and info["cpu"]
    assert set(info["cpu_isa"]) <= set(_ISA_FLAGS)
    assert info["torch_threads"] == torch.get_num_threads() and info["omp_num_threads"] == "1"
    assert info["torch"] == torch.__version__ and info["world_size"] >= 1


def test_record_environment_appends_one_record_per_part(tmp_path):
    path = tmp_path / "run" / "environment.json"
    record_environment(path, start_iter=0)
    record_environment(path, start_iter=200)  # a resumed run adds its own record
    records = json.loads(path.read_text())
    assert [r["start_iter"] for r in records] == [0, 200]
    assert records[0]["cpu"] == records[1]["cpu"] == describe_environment()["cpu"]
