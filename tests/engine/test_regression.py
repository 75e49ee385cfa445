"""Pinned training numbers: 5 FP32 iterations of AdvEnt, AdvEnt+MinEnt, DANN and OSBP+AdvEnt (with pseudo-labels)
on the tiny SynthCity give these exact losses.

The values were computed with the code before the method refactor (issue 15); a refactor must not change them.
Regenerate only for an intended numerical change: ``python tests/engine/test_regression.py DIR`` prints the new tables.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from seg_uda.config import config_from_dict
from seg_uda.engine.trainer import Trainer

from conftest import tiny_cfg_dict

pytestmark = pytest.mark.slow  # trains 5 iterations per case

ITERS = 5
REL = 1e-6


# case -> (method section, open-set); the open-set case has a 20-way head (19 known + unknown)
CASES = {
    "advent": ({"name": "advent"}, False),
    "advent_minent": ({"name": "advent_minent"}, False),
    "dann": ({"name": "dann"}, False),
    "osbp_advent_pl": ({"name": "osbp_advent", "pseudo_label": True}, True),
}


def regression_cfg(root: Path, case: str):
    """The tiny multi-level DeepLab-v2 / ResNet-18 run of tests/engine/test_train.py, FP32, without validation."""
    method, openset = CASES[case]
    d = tiny_cfg_dict(root, method["name"], name=f"regression_{case}", device="cpu",
                      data={"val": None, "openset": {"enabled": openset}},
                      schedule={"max_iters": ITERS, "ckpt_interval": ITERS, "amp": "none"})
    d["method"].update(method)
    del d["data"]["val_size"]  # the schema default, as when these values were pinned
    return config_from_dict(d)


def run_losses(root: Path, case: str, work_dir: Path) -> tuple[list[dict[str, float]], float]:
    """Per-iteration loss values of a 5-iteration run and the sum of the trained segmenter's parameters."""
    torch.set_num_threads(1)
    trainer = Trainer(regression_cfg(root, case), work_dir=work_dir, progress=False)
    losses = []
    for _ in range(ITERS):
        losses.append(trainer.run_step())
        trainer.iteration += 1
    return losses, float(sum(p.detach().double().sum() for p in trainer.model.parameters()))


EXPECTED: dict[str, tuple[list[dict[str, float]], float]] = {  # computed before the issue-15 refactor
    'advent': ([
        {'seg_main': 3.225564956665039, 'seg_aux': 0.3031327426433563, 'adv_main': 0.0006986337248235941,
         'adv_aux': 0.00013864996435586363, 'd_main_src': 0.34976059198379517, 'd_main_tgt': 0.34384530782699585,
         'd_aux_src': 0.3463114798069, 'd_aux_tgt': 0.34652233123779297},
        {'seg_main': 2.1140339374542236, 'seg_aux': 0.291639119386673, 'adv_main': 0.0006984985084272921,
         'adv_aux': 0.0001386246003676206, 'd_main_src': 0.3467864990234375, 'd_main_tgt': 0.34391218423843384,
         'd_aux_src': 0.34340953826904297, 'd_aux_tgt': 0.3465856909751892},
        {'seg_main': 3.4743716716766357, 'seg_aux': 0.25830984115600586, 'adv_main': 0.0006980110192671418,
         'adv_aux': 0.00013861097977496684, 'd_main_src': 0.3437961935997009, 'd_main_tgt': 0.3441534638404846,
         'd_aux_src': 0.34028828144073486, 'd_aux_tgt': 0.34661978483200073},
        {'seg_main': 1.7704991102218628, 'seg_aux': 0.23310990631580353, 'adv_main': 0.0006975922733545303,
         'adv_aux': 0.00013860108447261155, 'd_main_src': 0.33963388204574585, 'd_main_tgt': 0.344360888004303,
         'd_aux_src': 0.3366485834121704, 'd_aux_tgt': 0.34664463996887207},
        {'seg_main': 1.3808361291885376, 'seg_aux': 0.21488431096076965, 'adv_main': 0.0006973437266424298,
         'adv_aux': 0.0001386130606988445, 'd_main_src': 0.33497726917266846, 'd_main_tgt': 0.3444841802120209,
         'd_aux_src': 0.3322131037712097, 'd_aux_tgt': 0.34661489725112915},
    ], -67.83625228551627),
    'advent_minent': ([
        {'seg_main': 3.225564956665039, 'seg_aux': 0.3031327426433563, 'ent_main': 0.0009811311028897762,
         'adv_main': 0.0006986337248235941, 'ent_aux': 0.00019603192049544305, 'adv_aux': 0.00013864996435586363,
         'd_main_src': 0.34976059198379517, 'd_main_tgt': 0.34384530782699585, 'd_aux_src': 0.3463114798069,
         'd_aux_tgt': 0.34652233123779297},
        {'seg_main': 2.114014148712158, 'seg_aux': 0.2916398346424103, 'ent_main': 0.00046115630539134145,
         'adv_main': 0.0006984985084272921, 'ent_aux': 0.00019549016724340618, 'adv_aux': 0.00013862461491953582,
         'd_main_src': 0.3467864990234375, 'd_main_tgt': 0.34391218423843384, 'd_aux_src': 0.34340953826904297,
         'd_aux_tgt': 0.3465856909751892},
        {'seg_main': 3.473825454711914, 'seg_aux': 0.25830987095832825, 'ent_main': 0.0002183018805226311,
         'adv_main': 0.0006980110774748027, 'ent_aux': 0.00019522251386661083, 'adv_aux': 0.00013861097977496684,
         'd_main_src': 0.34379616379737854, 'd_main_tgt': 0.3441534638404846, 'd_aux_src': 0.34028828144073486,
         'd_aux_tgt': 0.34661978483200073},
        {'seg_main': 1.7707715034484863, 'seg_aux': 0.23310601711273193, 'ent_main': 0.0004457586328499019,
         'adv_main': 0.0006975921569392085, 'ent_aux': 0.00019054088625125587, 'adv_aux': 0.00013860108447261155,
         'd_main_src': 0.3396340608596802, 'd_main_tgt': 0.34436094760894775, 'd_aux_src': 0.3366485834121704,
         'd_aux_tgt': 0.34664463996887207},
        {'seg_main': 1.3805443048477173, 'seg_aux': 0.21487753093242645, 'ent_main': 0.0005395416519604623,
         'adv_main': 0.000697341572958976, 'ent_aux': 0.00018929774523712695, 'adv_aux': 0.00013861304614692926,
         'd_main_src': 0.334975004196167, 'd_main_tgt': 0.34448516368865967, 'd_aux_src': 0.3322131037712097,
         'd_aux_tgt': 0.34661486744880676},
    ], -67.82820617840864),
    'dann': ([
        {'seg_main': 3.225564956665039, 'seg_aux': 0.3031327426433563, 'domain': 0.06974884122610092},
        {'seg_main': 2.1140339374542236, 'seg_aux': 0.291639119386673, 'domain': 0.06938805431127548},
        {'seg_main': 3.4743995666503906, 'seg_aux': 0.25830957293510437, 'domain': 0.06937488168478012},
        {'seg_main': 1.770539402961731, 'seg_aux': 0.23310931026935577, 'domain': 0.06907527893781662},
        {'seg_main': 1.3808445930480957, 'seg_aux': 0.2148853838443756, 'domain': 0.06917933374643326},
    ], -67.8319714252726),
    'osbp_advent_pl': ([
        {'seg_main': 2.994234800338745, 'seg_aux': 0.3104564845561981, 'unk_main': 1.5847563743591309,
         'unk_aux': 0.14568360149860382, 'pl_main': 0.0, 'pl_aux': 0.0, 'adv_main': 0.0006968452944420278,
         'adv_aux': 0.00013892014976590872, 'd_main_src': 0.3488144874572754, 'd_main_tgt': 0.3447313904762268,
         'd_aux_src': 0.34701278805732727, 'd_aux_tgt': 0.3458479046821594},
        {'seg_main': 2.589848756790161, 'seg_aux': 0.2984277904033661, 'unk_main': 0.7155295014381409,
         'unk_aux': 0.12905459105968475, 'pl_main': 0.9017132520675659, 'pl_aux': 0.2056361436843872,
         'adv_main': 0.0006961418548598886, 'adv_aux': 0.00013892374408897012, 'd_main_src': 0.3456224203109741,
         'd_main_tgt': 0.34508073329925537, 'd_aux_src': 0.3441830277442932, 'd_aux_tgt': 0.3458389639854431},
        {'seg_main': 6.061633586883545, 'seg_aux': 0.25641459226608276, 'unk_main': 5.735415458679199,
         'unk_aux': 0.11591216176748276, 'pl_main': 0.4628414511680603, 'pl_aux': 0.17830711603164673,
         'adv_main': 0.0006959690945222974, 'adv_aux': 0.00013892320566810668, 'd_main_src': 0.34294506907463074,
         'd_main_tgt': 0.3451666831970215, 'd_aux_src': 0.3411474823951721, 'd_aux_tgt': 0.3458402156829834},
        {'seg_main': 3.0274159908294678, 'seg_aux': 0.24445028603076935, 'unk_main': 5.689600467681885,
         'unk_aux': 0.1121334657073021, 'pl_main': 0.824090301990509, 'pl_aux': 0.23590819537639618,
         'adv_main': 0.0006961036124266684, 'adv_aux': 0.00013892790593672544, 'd_main_src': 0.3396404981613159,
         'd_main_tgt': 0.34509986639022827, 'd_aux_src': 0.33761054277420044, 'd_aux_tgt': 0.34582847356796265},
        {'seg_main': 2.616154193878174, 'seg_aux': 0.22321057319641113, 'unk_main': 4.158466339111328,
         'unk_aux': 0.11283653229475021, 'pl_main': 0.5143477320671082, 'pl_aux': 0.255838006734848,
         'adv_main': 0.0006960326572880149, 'adv_aux': 0.0001389817480230704, 'd_main_src': 0.3358082175254822,
         'd_main_tgt': 0.3451351523399353, 'd_aux_src': 0.33340635895729065, 'd_aux_tgt': 0.3456943929195404},
    ], -54.56226242857595),
}


def test_every_case_is_pinned():
    assert sorted(EXPECTED) == sorted(CASES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_training_losses_are_pinned(synthcity, tmp_path, case):
    losses, param_sum = run_losses(synthcity, case, tmp_path)
    want, want_sum = EXPECTED[case]
    assert [set(x) for x in losses] == [set(x) for x in want]
    for it, (got, exp) in enumerate(zip(losses, want)):
        for k in exp:
            assert got[k] == pytest.approx(exp[k], rel=REL, abs=1e-12), (case, it, k)
    assert param_sum == pytest.approx(want_sum, rel=REL)


if __name__ == "__main__":  # print the tables to paste into EXPECTED
    sys.path.insert(0, str(Path(__file__).parents[1]))  # tests/, for conftest
    from conftest import make_tiny_synthcity

    out = Path(sys.argv[1])
    root = make_tiny_synthcity(out / "synthcity")
    for name in CASES:
        print(f"    {name!r}: {run_losses(root, name, out / name)!r},")
