"""seg_uda/runtime/environment.py: the machine record saved beside each run's config and each benchmark table."""
import json

import pytest
import torch

from seg_uda.runtime.environment import _ISA_FLAGS, cpu_info, describe_environment, parse_cpuinfo, record_environment


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


_EPYC = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC
flags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni
processor\t: 1
model name\t: AMD EPYC
flags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni
"""
_XEON = """processor\t: 0
model name\t: Intel(R) Xeon(R) Processor
flags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8
"""


@pytest.mark.parametrize("text, name, isa", [
    (_EPYC, "AMD EPYC", ["avx2", "avx512f", "avx512_bf16"]),
    (_XEON, "Intel(R) Xeon(R) Processor", ["avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"]),
    ("processor\t: 0\nflags\t\t: sse2\n", "unknown", []),  # no model name (some ARM kernels), no listed flag
    ("", "unknown", []),
])
def test_parse_cpuinfo_reads_the_first_cpu_and_the_kernel_flags(text, name, isa):
    assert parse_cpuinfo(text) == (name, isa)


def test_cpu_info_is_what_describe_environment_and_cpu_has_amx_report():
    from seg_uda.models.pointwise import cpu_has_amx

    cpu, isa = cpu_info()
    info = describe_environment()
    assert (info["cpu"], info["cpu_isa"]) == (cpu, list(isa))
    assert cpu_has_amx() == ("amx_bf16" in isa)
