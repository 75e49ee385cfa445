"""Shared fixtures: a tiny generated SynthCity (64x48 game / 64x32 real frames), fresh for each test module."""
from pathlib import Path

import pytest

TINY_SYNTHCITY = dict(seed=0, source_size=(64, 48), target_size=(64, 32), num_source=4,
                      num_target_train=4, num_target_val=2, workers=1)


def make_tiny_synthcity(out: Path) -> Path:
    """Generate the tiny SynthCity tree at `out` (under a second on one core)."""
    from seg_uda.data.synthcity import generate_synthcity

    generate_synthcity(out, **TINY_SYNTHCITY)
    return out


@pytest.fixture(scope="module")
def synthcity(tmp_path_factory) -> Path:
    """A tiny SynthCity tree; module-scoped so a module may alter its copy (fault injection) safely."""
    return make_tiny_synthcity(tmp_path_factory.mktemp("synthcity"))
