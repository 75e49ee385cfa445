"""UDA methods on a tiny stub segmenter: every method's losses and gradient separation, oracle / source-only data
use, errors, and the one shape of every method (declarations, from_config, registry presets). ADVENT's own terms:
tests/methods/test_advent.py; DANN's reversal: tests/methods/test_dann.py."""
from __future__ import annotations

import inspect

import pytest
import torch
from torch import nn

from method_stubs import FEAT, K, StubSegmenter, build_small, stub_batch
from seg_uda.methods import METHODS, DANN, UDAMethod, build_method
from seg_uda.methods.losses import seg_loss


# Loss names every registered method must report (single level; multi-level adds the *_aux twins).
EXPECTED = {
    "source_only": ({"seg_main"}, set()),
    "oracle": ({"seg_main"}, set()),
    "minent": ({"seg_main", "ent_main"}, set()),
    "advent": ({"seg_main", "adv_main"}, {"d_main_src", "d_main_tgt"}),
    "advent_minent": ({"seg_main", "adv_main", "ent_main"}, {"d_main_src", "d_main_tgt"}),
    "dann": ({"seg_main", "domain"}, set()),
    "fda": ({"seg_main", "ent_main"}, set()),
    "self_training": ({"seg_main", "mix_main"}, set()),
}
# terms without an aux twin (DANN's features, FDA's entropy, self-training's ClassMix loss)
MAIN_ONLY = {"domain", "fda:ent_main", "self_training:mix_main"}
ADVERSARIAL = [n for n, (_, d) in EXPECTED.items() if d]


def _expected(name: str, multi_level: bool) -> tuple[set[str], set[str]]:
    gen, disc = EXPECTED[name]
    if multi_level:
        gen = gen | {k.replace("main", "aux") for k in gen if k not in MAIN_ONLY and f"{name}:{k}" not in MAIN_ONLY}
        disc = disc | {k.replace("main", "aux") for k in disc}
    return gen, disc


def _inputs(method: UDAMethod) -> tuple[dict | None, dict | None]:
    source = stub_batch(0) if method.uses_source else None
    target = stub_batch(1, labelled=method.uses_target_labels) if method.uses_target else None
    return source, target


def _zero_grads(*modules: nn.Module) -> None:
    for m in modules:
        m.zero_grad(set_to_none=True)


# open-set methods need a (K+1)-way model with a gradient-reversal hook: tests/openset/test_openset.py covers them
CLOSED_SET = [n for n in METHODS.names() if not METHODS.get(n).unknown_head]


def test_expected_table_covers_registry() -> None:
    assert sorted(EXPECTED) == CLOSED_SET


# ------------------------------------------------------------------ every method: forward / backward
@pytest.mark.parametrize("multi_level", [False, True], ids=["single", "multi"])
@pytest.mark.parametrize("name", CLOSED_SET)
def test_method_forward_backward(name: str, multi_level: bool) -> None:
    torch.manual_seed(0)
    model = StubSegmenter(multi_level)
    method = build_small(name, model, multi_level)
    source, target = _inputs(method)

    losses, cache = method.generator_step(model, source, target, progress=0.5)
    gen_names, disc_names = _expected(name, multi_level)
    assert set(losses) == gen_names
    for key, value in losses.items():
        assert value.dim() == 0 and torch.isfinite(value), key
    sum(losses.values()).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{name}: no gradient for model.{pname}"
    for p in method.extra_parameters():
        assert p.grad is not None, f"{name}: extra parameter without gradient"
    assert all(not t.requires_grad for t in cache.values())

    d_losses = method.discriminator_step(cache)
    assert set(d_losses) == disc_names
    assert (len(method.discriminator_parameters()) > 0) == bool(disc_names) == method.has_discriminators
    if d_losses:
        _zero_grads(model, method)
        sum(d_losses.values()).backward()
        assert all(torch.isfinite(v) for v in d_losses.values())
        assert all(p.grad is not None for p in method.discriminator_parameters())


def test_adversarial_step_with_optimizers_updates_both_players() -> None:
    """One trainer-like iteration: segmenter SGD on the generator losses, D Adam on the D losses."""
    torch.manual_seed(0)
    model = StubSegmenter(multi_level=True)
    method = build_small("advent", model, multi_level=True)
    opt = torch.optim.SGD(list(model.parameters()) + method.extra_parameters(), lr=0.1)
    opt_d = torch.optim.Adam(method.discriminator_parameters(), lr=1e-4, betas=(0.9, 0.99))
    before_m = [p.detach().clone() for p in model.parameters()]
    before_d = [p.detach().clone() for p in method.discriminator_parameters()]
    losses, cache = method.generator_step(model, stub_batch(0), stub_batch(1, labelled=False), progress=0.0)
    sum(losses.values()).backward()
    sum(method.discriminator_step(cache).values()).backward()
    opt.step()
    opt_d.step()
    assert all(not torch.equal(a, b) for a, b in zip(before_m, model.parameters()))
    assert all(not torch.equal(a, b) for a, b in zip(before_d, method.discriminator_parameters()))


# ------------------------------------------------------------------ gradient separation
@pytest.mark.parametrize("name", ADVERSARIAL)
def test_generator_step_gives_no_gradient_to_discriminator(name: str) -> None:
    model = StubSegmenter(multi_level=True)
    method = build_small(name, model, multi_level=True)
    losses, _ = method.generator_step(model, stub_batch(0), stub_batch(1, labelled=False), progress=0.3)
    # requires_grad of D is restored after the generator forward ...
    assert all(p.requires_grad for p in method.discriminator_parameters())
    # ... yet backprop of the adversarial terms reaches the segmenter but not D.
    (losses["adv_main"] + losses["adv_aux"]).backward()
    assert all(p.grad is None or not p.grad.any() for p in method.discriminator_parameters())
    assert model.head.weight.grad is not None and model.head.weight.grad.abs().sum() > 0
    assert model.aux_head.weight.grad is not None and model.aux_head.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_discriminator_step_gives_no_gradient_to_segmenter(name: str) -> None:
    model = StubSegmenter(multi_level=True)
    method = build_small(name, model, multi_level=True)
    _, cache = method.generator_step(model, stub_batch(0), stub_batch(1, labelled=False), progress=0.3)
    _zero_grads(model, method)
    sum(method.discriminator_step(cache).values()).backward()
    assert all(p.grad is None for p in model.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in method.discriminator_parameters())


# ------------------------------------------------------------------ data use of the supervised baselines
def test_oracle_uses_target_labels_and_no_source() -> None:
    method = build_method("oracle", num_classes=K)
    assert (method.uses_source, method.uses_target, method.uses_target_labels) == (False, True, True)
    model = StubSegmenter()
    target = stub_batch(1)
    losses, _ = method.generator_step(model, None, target, progress=0.0)
    expected = seg_loss(model(target["image"])["out"], target["label"])
    assert losses["seg_main"].item() == pytest.approx(expected.item(), rel=1e-6)
    with pytest.raises(KeyError, match="'label'"):
        method.generator_step(model, None, stub_batch(1, labelled=False), progress=0.0)


def test_source_only_ignores_target() -> None:
    method = build_method("source_only", num_classes=K)
    assert (method.uses_source, method.uses_target, method.uses_target_labels) == (True, False, False)
    model = StubSegmenter()
    source = stub_batch(0)
    with_none, _ = method.generator_step(model, source, None, progress=0.0)
    garbage = {"image": torch.full((1, 1, 1, 1), float("nan"))}  # would fail or give NaN if it were used
    with_garbage, _ = method.generator_step(model, source, garbage, progress=0.0)
    expected = seg_loss(model(source["image"])["out"], source["label"])
    assert with_none["seg_main"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert torch.equal(with_none["seg_main"], with_garbage["seg_main"])


# ------------------------------------------------------------------ errors
def test_unknown_method_lists_valid_names() -> None:
    with pytest.raises(KeyError) as err:
        build_method("adevnt", num_classes=K)
    for name in METHODS.names():
        assert name in str(err.value)


def test_unknown_kwarg_lists_valid_arguments() -> None:
    with pytest.raises(TypeError, match="lambda_ent_main"):
        build_method("minent", num_classes=K, lambda_adv_main=1e-3)


def test_multi_level_needs_aux_output() -> None:
    method = build_method("minent", num_classes=K, multi_level=True)
    with pytest.raises(ValueError, match="'aux'"):
        method.generator_step(StubSegmenter(multi_level=False), stub_batch(0), stub_batch(1, False), progress=0.0)


def test_num_classes_mismatch_is_reported() -> None:
    method = build_method("source_only", num_classes=K + 2)
    with pytest.raises(ValueError, match="num_classes=5"):
        method.generator_step(StubSegmenter(), stub_batch(0), None, progress=0.0)


def test_missing_cache_key_is_reported() -> None:
    method = build_small("advent", StubSegmenter())
    with pytest.raises(KeyError, match="src_main"):
        method.discriminator_step({})


# ------------------------------------------------------------------ one shape: declarations, presets, from_config
def test_preset_defaults_can_be_overridden_where_not_fixed() -> None:
    assert build_method("osbp_minent", num_classes=K).entropy
    assert not build_method("osbp_minent", num_classes=K, entropy=False).entropy
    assert build_method("osbp_advent", num_classes=K).has_discriminators
    assert not build_method("osbp", num_classes=K).has_discriminators


def test_declarations_of_every_method() -> None:
    table = {n: (m.uses_source, m.uses_target, m.uses_target_labels, m.unknown_head, m.needs_features,
                 tuple(m.derived_args)) for n in METHODS.names() for m in [METHODS.get(n)]}
    assert table["source_only"][:3] == (True, False, False) and table["oracle"][:3] == (False, True, True)
    assert table["dann"][4:] == (True, ("num_classes", "feat_channels"))
    assert table["fda"][5] == ("num_classes", "pixel_mean", "pixel_std")
    assert [n for n, t in table.items() if t[3]] == ["open_self_training", "osbp", "osbp_advent", "osbp_minent"]
    for name in METHODS.names():  # a default build has what its class (or preset) declares
        built = build_method(name, num_classes=K, **({"feat_channels": FEAT} if name == "dann" else {}))
        assert built.has_discriminators == METHODS.get(name).has_discriminators, name
        assert built.unknown_head == METHODS.get(name).unknown_head, name
    for name, (*_, derived) in table.items():
        assert set(derived) <= set(inspect.signature(METHODS.get(name)).parameters), name


def _cfg(method: str, **args):
    from seg_uda.config import config_from_dict

    return config_from_dict({"name": "t", "data": {"source": {"type": "gta5", "root": "/x"},
                                                  "target": {"type": "cityscapes", "root": "/x"}, "num_classes": K},
                             "model": {"name": "deeplabv2", "encoder_name": "resnet18", "multi_level": True},
                             "method": {"name": method, **args}})


def test_from_config_takes_what_the_method_declares() -> None:
    from seg_uda.builders import build_method as build_from_config

    model = StubSegmenter(multi_level=True)
    model.multi_level = True
    assert METHODS.get("dann").from_config(_cfg("dann", lambda_domain=0.2), model) == {
        "num_classes": K, "multi_level": True, "feat_channels": FEAT, "lambda_domain": 0.2}
    # the config's method.multi_level wins over the model's; no model: nothing taken from it
    assert METHODS.get("minent").from_config(_cfg("minent", multi_level=False), model) == {
        "num_classes": K, "multi_level": False}
    assert METHODS.get("advent").from_config(_cfg("advent"), None) == {"num_classes": K}
    method = build_from_config(_cfg("dann", classifier_hidden=8), model)
    assert isinstance(method, DANN) and (method.feat_channels, method.multi_level) == (FEAT, True)


def test_model_args_need_feat_channels_only_when_declared() -> None:
    class NoFeat(nn.Module):
        multi_level = True

    assert METHODS.get("minent").model_args(NoFeat()) == {"multi_level": True}
    with pytest.raises(AttributeError, match="feat_channels"):
        METHODS.get("dann").model_args(NoFeat())


def test_new_method_files_register_without_editing_the_package() -> None:
    from pathlib import Path

    import seg_uda.methods as pkg

    assert "fda" in METHODS.names() and "fda" not in Path(pkg.__file__).read_text()
