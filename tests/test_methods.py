"""UDA methods on a tiny stub segmenter: losses, gradient separation, DANN's reversal, oracle / source-only data use,
and the one shape of every method (declarations, from_config, registry presets)."""
from __future__ import annotations

import inspect
import math

import pytest
import torch
from torch import nn

from seg_uda.methods import METHODS, DANN, AdvEnt, UDAMethod, build_method, grl_schedule
from seg_uda.methods.losses import bce_with_logits, class_prior_loss, seg_loss, upsample_logits
from seg_uda.registry import Preset

K = 3  # classes
FEAT = 4  # stub feature channels
H = W = 32  # FCDiscriminator's five stride-2 convs need >= 32 px


class StubSegmenter(nn.Module):
    """Two convs following the segmenter interface: {"out", "feat"[, "aux"]} at half resolution."""

    def __init__(self, multi_level: bool = False) -> None:
        super().__init__()
        self.feat_channels = FEAT
        self.body = nn.Sequential(nn.Conv2d(3, FEAT, 3, stride=2, padding=1), nn.ReLU())
        self.head = nn.Conv2d(FEAT, K, 1)
        self.aux_head = nn.Conv2d(FEAT, K, 1) if multi_level else None

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        feat = self.body(x)
        out = {"out": self.head(feat), "feat": feat}
        if self.aux_head is not None:
            out["aux"] = self.aux_head(feat)
        return out


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


def _batch(seed: int, labelled: bool = True) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    batch = {"image": torch.randn(2, 3, H, W, generator=g)}
    if labelled:
        label = torch.randint(0, K, (2, H, W), generator=g)
        label[:, :4] = 255
        batch["label"] = label
    return batch


def _build(name: str, model: nn.Module, multi_level: bool = False, **kw) -> UDAMethod:
    if "disc_ndf" in inspect.signature(METHODS.get(name)).parameters:
        kw.setdefault("disc_ndf", 4)
    if name == "dann":
        kw.setdefault("classifier_hidden", 8)
    return build_method(name, model=model, num_classes=K, multi_level=multi_level, **kw)


def _inputs(method: UDAMethod) -> tuple[dict | None, dict | None]:
    source = _batch(0) if method.uses_source else None
    target = _batch(1, labelled=method.uses_target_labels) if method.uses_target else None
    return source, target


def _zero_grads(*modules: nn.Module) -> None:
    for m in modules:
        m.zero_grad(set_to_none=True)


# open-set methods need a (K+1)-way model with a gradient-reversal hook: tests/test_openset.py covers them
CLOSED_SET = [n for n in METHODS.names() if not METHODS.get(n).unknown_head]


def test_expected_table_covers_registry() -> None:
    assert sorted(EXPECTED) == CLOSED_SET


# ------------------------------------------------------------------ every method: forward / backward
@pytest.mark.parametrize("multi_level", [False, True], ids=["single", "multi"])
@pytest.mark.parametrize("name", CLOSED_SET)
def test_method_forward_backward(name: str, multi_level: bool) -> None:
    torch.manual_seed(0)
    model = StubSegmenter(multi_level)
    method = _build(name, model, multi_level)
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
    method = _build("advent", model, multi_level=True)
    opt = torch.optim.SGD(list(model.parameters()) + method.extra_parameters(), lr=0.1)
    opt_d = torch.optim.Adam(method.discriminator_parameters(), lr=1e-4, betas=(0.9, 0.99))
    before_m = [p.detach().clone() for p in model.parameters()]
    before_d = [p.detach().clone() for p in method.discriminator_parameters()]
    losses, cache = method.generator_step(model, _batch(0), _batch(1, labelled=False), progress=0.0)
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
    method = _build(name, model, multi_level=True)
    losses, _ = method.generator_step(model, _batch(0), _batch(1, labelled=False), progress=0.3)
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
    method = _build(name, model, multi_level=True)
    _, cache = method.generator_step(model, _batch(0), _batch(1, labelled=False), progress=0.3)
    _zero_grads(model, method)
    sum(method.discriminator_step(cache).values()).backward()
    assert all(p.grad is None for p in model.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in method.discriminator_parameters())


def test_advent_labels_and_inputs_follow_advent() -> None:
    """Generator: target maps vs the *source* label (0); D: source maps -> 0, target maps -> 1, each halved."""
    torch.manual_seed(0)
    model = StubSegmenter()
    method = _build("advent", model, lambda_adv_main=1.0)
    disc = method.discriminators["main"]
    target = _batch(1, labelled=False)
    losses, cache = method.generator_step(model, _batch(0), target, progress=0.0)
    # The D input is the self-information map of the softmax of target logits upsampled to the image size.
    logits = torch.nn.functional.interpolate(model(target["image"])["out"], size=(H, W), mode="bilinear",
                                             align_corners=True)
    prob = logits.softmax(1)
    imap = -prob * torch.log2(prob + 1e-30) / math.log2(K)
    assert cache["tgt_main"].shape == (2, K, H, W)
    assert torch.allclose(cache["tgt_main"], imap, atol=1e-6)
    assert losses["adv_main"].item() == pytest.approx(bce_with_logits(disc(imap), 0.0).item(), rel=1e-5)
    d = method.discriminator_step(cache)
    assert d["d_main_src"].item() == pytest.approx(0.5 * bce_with_logits(disc(cache["src_main"]), 0.0).item(), rel=1e-5)
    assert d["d_main_tgt"].item() == pytest.approx(0.5 * bce_with_logits(disc(imap), 1.0).item(), rel=1e-5)


def test_paper_default_weights() -> None:
    m = build_method("advent_minent", num_classes=K, multi_level=True)
    assert (m.lambda_seg_main, m.lambda_seg_aux) == (1.0, 0.1)
    assert m.lambda_adv == {"main": 1e-3, "aux": 2e-4}
    assert m.lambda_ent == {"main": 1e-3, "aux": 2e-4}
    assert m.discriminators["main"].layers[0].out_channels == 64


def test_weights_scale_reported_losses() -> None:
    torch.manual_seed(0)
    model = StubSegmenter()
    src, tgt = _batch(0), _batch(1, labelled=False)
    a, _ = _build("minent", model, lambda_ent_main=1.0, lambda_seg_main=1.0).generator_step(model, src, tgt, 0.0)
    b, _ = _build("minent", model, lambda_ent_main=0.5, lambda_seg_main=2.0).generator_step(model, src, tgt, 0.0)
    assert b["ent_main"].item() == pytest.approx(0.5 * a["ent_main"].item(), rel=1e-6)
    assert b["seg_main"].item() == pytest.approx(2.0 * a["seg_main"].item(), rel=1e-6)


# ------------------------------------------------------------------ data use of the supervised baselines
def test_oracle_uses_target_labels_and_no_source() -> None:
    method = build_method("oracle", num_classes=K)
    assert (method.uses_source, method.uses_target, method.uses_target_labels) == (False, True, True)
    model = StubSegmenter()
    target = _batch(1)
    losses, _ = method.generator_step(model, None, target, progress=0.0)
    expected = seg_loss(model(target["image"])["out"], target["label"])
    assert losses["seg_main"].item() == pytest.approx(expected.item(), rel=1e-6)
    with pytest.raises(KeyError, match="'label'"):
        method.generator_step(model, None, _batch(1, labelled=False), progress=0.0)


def test_source_only_ignores_target() -> None:
    method = build_method("source_only", num_classes=K)
    assert (method.uses_source, method.uses_target, method.uses_target_labels) == (True, False, False)
    model = StubSegmenter()
    source = _batch(0)
    with_none, _ = method.generator_step(model, source, None, progress=0.0)
    garbage = {"image": torch.full((1, 1, 1, 1), float("nan"))}  # would fail or give NaN if it were used
    with_garbage, _ = method.generator_step(model, source, garbage, progress=0.0)
    expected = seg_loss(model(source["image"])["out"], source["label"])
    assert with_none["seg_main"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert torch.equal(with_none["seg_main"], with_garbage["seg_main"])


# ------------------------------------------------------------------ DANN
def test_grl_schedule_values() -> None:
    # lambda_p = 2/(1+exp(-10p)) - 1 = tanh(5p): p=0 -> 0; p=1 -> 2/(1+e^-10) - 1 = 0.9999092.
    assert grl_schedule(0.0) == 0.0
    assert grl_schedule(1.0) == pytest.approx(0.99991, abs=1e-5)
    assert grl_schedule(0.5) == pytest.approx(math.tanh(2.5))
    m = build_method("dann", num_classes=K, feat_channels=FEAT, grl_max=0.5)
    assert m.grl_coefficient(1.0) == pytest.approx(0.5 * grl_schedule(1.0))
    assert build_method("dann", num_classes=K, feat_channels=FEAT, grl_warmup=False).grl_coefficient(0.0) == 1.0
    with pytest.raises(ValueError, match="progress"):
        m.grl_coefficient(1.5)


@pytest.mark.parametrize("progress", [0.2, 1.0])
def test_dann_features_receive_reversed_domain_gradient(progress: float) -> None:
    torch.manual_seed(0)
    method = DANN(num_classes=K, feat_channels=FEAT, lambda_domain=0.3, grl_max=0.7, classifier_hidden=8)
    fs, ft = torch.randn(2, FEAT, 5, 5), torch.randn(2, FEAT, 5, 5)

    # With the GRL (the method's loss).
    fs_a, ft_a = fs.clone().requires_grad_(), ft.clone().requires_grad_()
    method.domain_loss(fs_a, ft_a, progress).backward()
    clf_grads = [p.grad.clone() for p in method.extra_parameters()]
    method.zero_grad(set_to_none=True)

    # Same loss without the GRL.
    fs_b, ft_b = fs.clone().requires_grad_(), ft.clone().requires_grad_()
    clf = method.domain_classifier
    plain = 0.3 * 0.5 * (bce_with_logits(clf(fs_b), 0.0) + bce_with_logits(clf(ft_b), 1.0))
    plain.backward()

    lam = 0.7 * grl_schedule(progress)
    assert fs_a.grad.abs().sum() > 0
    assert torch.allclose(fs_a.grad, -lam * fs_b.grad, atol=1e-7)
    assert torch.allclose(ft_a.grad, -lam * ft_b.grad, atol=1e-7)
    # The classifier itself descends the domain loss (no reversal on its own parameters).
    for g, p in zip(clf_grads, method.extra_parameters()):
        assert torch.allclose(g, p.grad, atol=1e-7)


def test_dann_parameters_and_feat_channels_from_model() -> None:
    model = StubSegmenter()
    method = build_method("dann", model=model, num_classes=K)
    assert method.feat_channels == FEAT
    assert method.discriminator_parameters() == []
    ids = {id(p) for p in method.extra_parameters()}
    assert ids == {id(p) for p in method.domain_classifier.parameters()} and ids


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
        method.generator_step(StubSegmenter(multi_level=False), _batch(0), _batch(1, False), progress=0.0)


def test_num_classes_mismatch_is_reported() -> None:
    method = build_method("source_only", num_classes=K + 2)
    with pytest.raises(ValueError, match="num_classes=5"):
        method.generator_step(StubSegmenter(), _batch(0), None, progress=0.0)


def test_missing_cache_key_is_reported() -> None:
    method = _build("advent", StubSegmenter())
    with pytest.raises(KeyError, match="src_main"):
        method.discriminator_step({})


# ------------------------------------------------------------------ one shape: declarations, presets, from_config
def test_entropy_presets_are_one_class_with_todays_defaults() -> None:
    built = {n: build_method(n, num_classes=K) for n in ("minent", "advent", "advent_minent")}
    assert {type(m) for m in built.values()} == {AdvEnt}
    flags = {n: (m.adversarial, m.entropy, m.has_discriminators) for n, m in built.items()}
    assert flags == {"minent": (False, True, False), "advent": (True, False, True), "advent_minent": (True, True, True)}
    for m in built.values():
        assert (m.lambda_adv, m.lambda_ent) == ({"main": 1e-3, "aux": 2e-4}, {"main": 1e-3, "aux": 2e-4})
    assert isinstance(METHODS.get("minent"), Preset)
    assert "disc_ndf" not in inspect.signature(METHODS.get("minent")).parameters  # hidden: MinEnt has no D
    assert "lambda_ent_main" not in inspect.signature(METHODS.get("advent")).parameters
    with pytest.raises(TypeError, match="adversarial"):  # a preset's fixed flags cannot be overridden
        build_method("minent", num_classes=K, adversarial=True)


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
    assert [n for n, t in table.items() if t[3]] == ["osbp", "osbp_advent", "osbp_minent"]
    for name in METHODS.names():  # a default build has what its class (or preset) declares
        built = build_method(name, num_classes=K, **({"feat_channels": FEAT} if name == "dann" else {}))
        assert built.has_discriminators == METHODS.get(name).has_discriminators, name
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


# ------------------------------------------------------------------ ADVENT's class-ratio prior (Sec. 3.3)
@pytest.mark.parametrize("name", ["minent", "advent", "advent_minent"])
def test_class_prior_term_is_weighted_per_level_and_off_by_default(name: str) -> None:
    torch.manual_seed(0)
    model = StubSegmenter(multi_level=True)
    src, tgt = _batch(0), _batch(1, labelled=False)
    plain, _ = _build(name, model, multi_level=True).generator_step(model, src, tgt, 0.0)
    assert not any(k.startswith("cp_") for k in plain)
    prior = [2.0, 1.0, 1.0]  # normalised by the method: [0.5, 0.25, 0.25]
    method = _build(name, model, multi_level=True, lambda_cp_main=0.3, lambda_cp_aux=0.07, cp_mu=0.8,
                    class_prior=prior)
    losses, _ = method.generator_step(model, src, tgt, 0.0)
    out = model(tgt["image"])
    for level, key, weight in (("main", "out", 0.3), ("aux", "aux", 0.07)):
        prob = torch.softmax(upsample_logits(out[key], (H, W)).float(), dim=1)
        expected = weight * class_prior_loss(prob, torch.tensor([0.5, 0.25, 0.25]), 0.8)
        assert losses[f"cp_{level}"].item() == pytest.approx(expected.item(), rel=1e-6)
        assert losses[f"cp_{level}"].requires_grad
    only_main = _build(name, model, multi_level=True, lambda_cp_main=0.3, class_prior=prior)
    assert [k for k in only_main.generator_step(model, src, tgt, 0.0)[0] if k.startswith("cp_")] == ["cp_main"]


def test_class_prior_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="needs class_prior"):
        build_method("minent", num_classes=K, lambda_cp_main=0.1)
    with pytest.raises(ValueError, match="class_prior must be 3 non-negative numbers"):
        build_method("minent", num_classes=K, lambda_cp_main=0.1, class_prior=[0.5, 0.5])
    with pytest.raises(ValueError, match="class_prior must be 3 non-negative numbers"):
        build_method("minent", num_classes=K, lambda_cp_main=0.1, class_prior=[1.0, -0.5, 0.5])
    with pytest.raises(ValueError, match="cp_mu in"):
        build_method("advent", num_classes=K, lambda_cp_main=0.1, cp_mu=1.5, class_prior=[1, 1, 1])
    factory = METHODS.get("minent")
    assert factory.wants_source_prior({"lambda_cp_aux": 0.1})
    assert not factory.wants_source_prior({"lambda_cp_main": 0.1, "class_prior": [1, 1, 1]})
    assert not factory.wants_source_prior({}) and not METHODS.get("dann").wants_source_prior({"lambda_cp_main": 1})


def test_class_prior_from_a_config_is_the_source_label_histogram(synthcity) -> None:
    from conftest import tiny_cfg_dict

    from seg_uda.builders import build_dataset, build_method as build_from_config
    from seg_uda.config import config_from_dict

    spec = tiny_cfg_dict(synthcity, "minent")
    spec["method"]["lambda_cp_main"] = 0.01
    cfg = config_from_dict(spec)
    method = build_from_config(cfg)
    # hand count: every train id of every source label file, through the dataset's own id mapping
    source = build_dataset(cfg, "source")
    counts = torch.zeros(19, dtype=torch.float64)
    for i in range(len(source)):
        ids = torch.as_tensor(source.load_train_ids(i)).long().flatten()
        counts += torch.bincount(ids[ids < 19], minlength=19).double()
    assert torch.allclose(method.class_prior.double(), counts / counts.sum(), atol=1e-7)
    assert method.lambda_cp == {"main": 0.01}
