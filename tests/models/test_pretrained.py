"""Encoder weights: offline EfficientNet-Lite0, ADVENT's `Scale.` ResNet files, local files, offline errors."""
import warnings
from collections import OrderedDict

import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F
import torchvision

from seg_uda.models import DeepLabV2, DeepLabV3Plus, PretrainedWeightsError, load_lite0_offline_state_dict
from seg_uda.models.pretrained import advent_checkpoint_to_deeplabv2, load_state_dict_file

torch.set_num_threads(1)
EGYPTIAN_CAT = 285  # ImageNet-1k class index


@pytest.fixture(scope="module")
def lite0_sd():
    return load_lite0_offline_state_dict()


def _encoder_matches(encoder: torch.nn.Module, expected: dict, prefix: str = "") -> int:
    """Assert every encoder tensor equals the expected one; return how many were compared."""
    n = 0
    for k, v in encoder.state_dict().items():
        if k.endswith("num_batches_tracked"):
            continue
        key = k[len(prefix):] if k.startswith(prefix) else k
        assert key in expected, k
        assert torch.equal(v, expected[key]), k
        n += 1
    return n


# ----------------------------------------------------------------------------------------- lite0 offline
def test_lite0_offline_state_dict_is_timm_named(lite0_sd) -> None:
    ref = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()
    assert list(lite0_sd) == list(ref)
    assert all(lite0_sd[k].shape == ref[k].shape for k in ref)


def test_lite0_offline_classifies_chelsea_as_egyptian_cat(lite0_sd) -> None:
    skimage_data = pytest.importorskip("skimage.data")
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    model.load_state_dict(lite0_sd)
    img = torch.from_numpy(np.ascontiguousarray(skimage_data.chelsea())).permute(2, 0, 1).float()[None]
    img = F.interpolate(img, size=(224, 224), mode="bilinear", align_corners=False)
    with torch.no_grad():
        logits = model.eval()((img - 127.0) / 128.0)
    assert logits.argmax(1).item() == EGYPTIAN_CAT


@pytest.mark.parametrize("cls", [DeepLabV2, DeepLabV3Plus])
def test_lite0_offline_weights_land_in_segmenter_encoders(cls, lite0_sd) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a complete backbone load must not warn
        m = cls(num_classes=3, encoder_name="tf_efficientnet_lite0", encoder_weights="lite0_offline")
    report = m.pretrained_report
    assert not report.missing and not report.unexpected
    assert {k.split(".")[0] for k in report.skipped} == {"conv_head", "bn2", "classifier"}
    n = _encoder_matches(m.encoder, lite0_sd, prefix="model.")
    assert n == len([k for k in report.loaded if not k.endswith("num_batches_tracked")]) > 200


def test_lite0_offline_rejects_other_encoders() -> None:
    with pytest.raises(ValueError, match="tf_efficientnet_lite0"):
        DeepLabV2(encoder_name="resnet18", encoder_weights="lite0_offline")


# ------------------------------------------------------------------------------------------ 'imagenet' offline
@pytest.fixture
def offline_hub(monkeypatch, tmp_path):
    """Make huggingface_hub fail fast (no network retries) with an empty cache."""
    import huggingface_hub.constants as hf_constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path))


@pytest.mark.parametrize("cls,encoder", [(DeepLabV2, "resnet18"), (DeepLabV2, "tf_efficientnet_lite0"),
                                         (DeepLabV3Plus, "resnet18")])
def test_imagenet_offline_gives_clear_error(offline_hub, cls, encoder) -> None:
    with pytest.raises(PretrainedWeightsError) as err:
        cls(num_classes=3, encoder_name=encoder, encoder_weights="imagenet")
    msg = str(err.value)
    assert "can't be downloaded" in msg and "lite0_offline" in msg and encoder in msg and ".pth" in msg


def test_unknown_weights_name_lists_options() -> None:
    with pytest.raises(ValueError) as err:
        DeepLabV2(encoder_name="resnet18", encoder_weights="imagenet22k_typo")
    assert "imagenet22k_typo" in str(err.value) and "lite0_offline" in str(err.value)


# ----------------------------------------------------------------------------------- local / ADVENT files
def _advent_style_resnet18_file(path, extra=None):
    """A DeepLab_resnet_pretrained_imagenet.pth-like file: `Scale.`-prefixed ResNet keys + a `layer5` classifier."""
    torch.manual_seed(123)
    src = torchvision.models.resnet18(weights=None)
    for m in src.modules():  # non-default BN values, so a successful load is visible
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            torch.nn.init.uniform_(m.weight, 0.5, 2)
            torch.nn.init.uniform_(m.bias, -1, 1)
    plain = OrderedDict((k, v) for k, v in src.state_dict().items() if not k.endswith("num_batches_tracked"))
    sd = OrderedDict(("Scale." + k, v) for k, v in plain.items())
    for i in range(4):  # DeepLab-v2 VOC classifier, deliberately shaped like the seg_uda main classifier
        sd[f"Scale.layer5.conv2d_list.{i}.weight"] = torch.randn(19, 512, 3, 3)
        sd[f"Scale.layer5.conv2d_list.{i}.bias"] = torch.randn(19)
    sd.update(extra or {})
    torch.save(sd, path)
    return {k: v for k, v in plain.items() if not k.startswith("fc.")}, sd


@pytest.mark.parametrize("bn_policy", ["frozen", "train"])
def test_advent_scale_file_loads_into_encoder(tmp_path, bn_policy) -> None:
    path = tmp_path / "DeepLab_resnet_pretrained_imagenet.pth"
    expected, file_sd = _advent_style_resnet18_file(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = DeepLabV2(num_classes=19, encoder_name="resnet18", encoder_weights=str(path), bn_policy=bn_policy)
    assert _encoder_matches(m.encoder, expected) == len(expected)
    report = m.pretrained_report
    assert not report.missing and not report.unexpected
    assert sorted(report.skipped) == sorted(k[len("Scale."):] for k in file_sd
                                            if k.startswith(("Scale.layer5.", "Scale.fc.")))
    for i, conv in enumerate(m.classifier.conv2d_list):  # the file's classifier must not be loaded anywhere
        assert not torch.equal(conv.weight, file_sd[f"Scale.layer5.conv2d_list.{i}.weight"])


def test_missing_and_unexpected_keys_are_reported(tmp_path) -> None:
    path = tmp_path / "partial.pth"
    expected, file_sd = _advent_style_resnet18_file(path, extra={"Scale.aux_head.weight": torch.zeros(3)})
    del file_sd["Scale.layer4.1.conv2.weight"]
    torch.save(file_sd, path)
    with pytest.warns(UserWarning) as rec:
        m = DeepLabV2(encoder_name="resnet18", encoder_weights=path)
    msg = " ".join(str(r.message) for r in rec)
    assert "layer4.1.conv2.weight" in msg and "aux_head.weight" in msg and str(path) in msg
    assert m.pretrained_report.missing == ["layer4.1.conv2.weight"]
    assert m.pretrained_report.unexpected == ["aux_head.weight"]


def test_shape_mismatch_names_key_and_file(tmp_path) -> None:
    path = tmp_path / "bad_shape.pth"
    torch.save({"Scale.conv1.weight": torch.zeros(64, 3, 3, 3)}, path)
    with pytest.raises(PretrainedWeightsError, match=r"conv1\.weight") as err:
        DeepLabV2(encoder_name="resnet18", encoder_weights=str(path))
    assert str(path) in str(err.value)


def test_unrelated_file_is_rejected(tmp_path) -> None:
    path = tmp_path / "other.pth"
    torch.save({"foo.weight": torch.zeros(2)}, path)
    with pytest.raises(PretrainedWeightsError, match="none of its"):
        DeepLabV2(encoder_name="resnet18", encoder_weights=str(path))


def test_corrupt_file_names_the_file(tmp_path) -> None:
    good = tmp_path / "good.pth"
    _advent_style_resnet18_file(good)
    bad = tmp_path / "truncated.pth"
    bad.write_bytes(good.read_bytes()[:5000])
    with pytest.raises(PretrainedWeightsError) as err:
        DeepLabV2(encoder_name="resnet18", encoder_weights=str(bad))
    assert str(bad) in str(err.value) and "corrupt" in str(err.value)


def test_missing_file_names_the_file(tmp_path) -> None:
    path = tmp_path / "nope.pth"
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        DeepLabV2(encoder_name="resnet18", encoder_weights=str(path))


def test_load_state_dict_file_unwraps_containers(tmp_path) -> None:
    path = tmp_path / "ckpt.pth"
    torch.save({"state_dict": {"a": torch.ones(2)}, "epoch": 3}, path)
    assert list(load_state_dict_file(path)) == ["a"]


def test_advent_checkpoint_conversion_round_trip() -> None:
    """ADVENT ResNetMulti names (conv1..layer4, layer5 = aux, layer6 = main) map onto DeepLabV2."""
    torch.manual_seed(0)
    a = DeepLabV2(num_classes=3, encoder_name="resnet18", bn_policy="train").eval()
    advent = OrderedDict()
    for k, v in a.state_dict().items():
        if k.startswith("encoder."):
            advent[k[len("encoder."):]] = v
        elif k.startswith("aux_classifier."):
            advent["layer5." + k[len("aux_classifier."):]] = v
        else:
            advent["layer6." + k[len("classifier."):]] = v
    torch.manual_seed(1)
    b = DeepLabV2(num_classes=3, encoder_name="resnet18", bn_policy="train").eval()
    b.load_state_dict(advent_checkpoint_to_deeplabv2(advent))
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(a(x)["out"], b(x)["out"]) and torch.equal(a(x)["aux"], b(x)["aux"])
