"""ADVENT's model side in the paper configs: Caffe preprocessing, the Caffe ResNet-101 layout, and released
ADVENT checkpoints (bare ResNetMulti state dicts) evaluated directly."""

import numpy as np
import pytest
import torch
from torch import nn

from advent_reference import ResNetMulti, randomize
from seg_uda.config import load_config
from seg_uda.data import build_eval_transform, build_train_transform, denormalize
from seg_uda.builders import build_model, dataset_transform
from conftest import REPO, load_tool

PAPER_CONFIGS = sorted(str(p.relative_to(REPO)) for p in (REPO / "configs").rglob("*_deeplabv2_r101.yaml"))
GTA5_ADVENT = REPO / "configs/gta5_to_cityscapes/advent_deeplabv2_r101.yaml"
ADVENT_MEAN_BGR = np.array((104.00698793, 116.66876762, 122.67891434), dtype=np.float32)  # cfg.TRAIN.IMG_MEAN


def advent_preprocess(rgb: np.ndarray) -> torch.Tensor:
    """ADVENT's BaseDataset.preprocess on an RGB uint8 image: float32, to BGR, minus IMG_MEAN, CHW."""
    image = np.asarray(rgb, np.float32)[:, :, ::-1] - ADVENT_MEAN_BGR
    return torch.from_numpy(image.transpose((2, 0, 1)).copy())


def paper_cfg(path=GTA5_ADVENT, *overrides):
    return load_config(path, ["model.encoder_weights=null", *overrides])


# ------------------------------------------------------------------------------------------ preprocessing
def test_caffe_normalization_gives_advents_tensor():
    img = np.array([[[0, 127, 255], [10, 20, 30]], [[255, 255, 255], [1, 2, 3]]], dtype=np.uint8)
    rgb = np.random.default_rng(0).integers(0, 256, size=(6, 9, 3), dtype=np.uint8)
    for x in (img, rgb):
        want = advent_preprocess(x)
        assert torch.equal(build_eval_transform(normalize="caffe")(x).image, want)  # bit for bit
        plain = build_train_transform(scale_range=None, hflip=False, color_jitter=None, normalize="caffe")
        assert torch.equal(plain(x).image, want)
        assert np.array_equal(denormalize(want, "caffe"), x)  # display code gets the RGB image back
    assert build_eval_transform(normalize="caffe")(img).image[:, 0, 0].tolist() == pytest.approx(
        [255 - 104.00698793, 127 - 116.66876762, 0 - 122.67891434], abs=1e-4)  # B, G, R


def test_paper_pipeline_resizes_and_normalizes_like_advents_loaders():
    """GTA5 source and Cityscapes val through the paper config's transforms = ADVENT's _load_img + preprocess."""
    from PIL import Image

    cfg = paper_cfg(GTA5_ADVENT, "data.source_size=[24,14]", "data.val_size=[24,14]")
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, size=(30, 41, 3), dtype=np.uint8)
    label = rng.integers(0, 19, size=(30, 41), dtype=np.uint8)
    want = advent_preprocess(np.asarray(Image.fromarray(rgb).resize((24, 14), Image.BICUBIC)))
    src = dataset_transform(cfg, "source")(rgb, label)
    assert torch.equal(src.image, want)
    assert np.array_equal(src.label.numpy(), np.asarray(Image.fromarray(label).resize((24, 14), Image.NEAREST)))
    val = dataset_transform(cfg, "val")(rgb, label)
    assert torch.equal(val.image, want) and np.array_equal(val.label.numpy(), label)  # labels stay full size


@pytest.mark.parametrize("path", PAPER_CONFIGS)
def test_paper_configs_use_caffe_inputs_and_layout(path):
    cfg = load_config(REPO / path)
    assert cfg.data.normalization == "caffe" and cfg.data.resize_backend == "pil"
    assert cfg.model.args["caffe_resnet"] is True
    assert str(cfg.model.args["encoder_weights"]).endswith("DeepLab_resnet_pretrained_imagenet.pth")
    x = dataset_transform(cfg, "val")(np.full((4, 4, 3), (10, 20, 30), np.uint8)).image
    assert x[:, 0, 0].tolist() == pytest.approx([30 - 104.00698793, 20 - 116.66876762, 10 - 122.67891434])


# ------------------------------------------------------------------------------------------ layout
@pytest.fixture(scope="module")
def advent_model():
    torch.set_num_threads(1)
    return randomize(ResNetMulti(num_classes=19)).eval()


@pytest.fixture(scope="module")
def paper_model():
    torch.set_num_threads(1)
    return build_model(paper_cfg()).eval()


def test_paper_resnet101_has_advents_layer_shapes_and_strides(advent_model, paper_model):
    ours = dict(paper_model.named_modules())
    heads = {"layer5": "aux_classifier", "layer6": "classifier"}
    convs = 0
    for name, ref in advent_model.named_modules():
        top = name.split(".")[0]
        mine = ours.get(heads[top] + name[len(top):] if top in heads else "encoder." + name)
        if isinstance(ref, nn.Conv2d):
            convs += 1
            assert isinstance(mine, nn.Conv2d), name
            for attr in ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation"):
                if attr == "dilation" and ref.kernel_size == (1, 1):
                    continue  # SMP also marks 1x1 convs of dilated stages dilated: one tap, no effect
                assert getattr(mine, attr) == getattr(ref, attr), f"{name}.{attr}"
            assert (mine.bias is None) == (ref.bias is None), name
        elif isinstance(ref, nn.MaxPool2d):
            for attr in ("kernel_size", "stride", "padding", "ceil_mode"):
                assert getattr(mine, attr) == getattr(ref, attr), f"{name}.{attr}"
    assert convs == 1 + 3 * 33 + 4 + 2 * 4  # stem, 33 bottlenecks, 4 downsamples, 2 x 4 ASPP branches
    x = torch.zeros(1, 3, 96, 128)  # max-pool input 48x64: ceil mode gives 25x33 (floor: 24x32), then 13x17
    with torch.no_grad():
        assert paper_model(x)["out"].shape[-2:] == advent_model(x)[1].shape[-2:] == (13, 17)


# ------------------------------------------------------------------------------------------ checkpoints
@pytest.fixture(scope="module")
def advent_file(advent_model, tmp_path_factory):
    """A released-ADVENT-format file: a bare ResNetMulti state dict, saved without BN batch counters."""
    path = tmp_path_factory.mktemp("advent") / "GTA2Cityscapes_DeepLabv2_AdvEnt.pth"
    torch.save({k: v for k, v in advent_model.state_dict().items() if not k.endswith("num_batches_tracked")}, path)
    return path


def test_advent_state_dict_loads_and_gives_the_same_logits_in_float64(advent_model, advent_file):
    from seg_uda.evaluation.checkpoint_model import load_eval_checkpoint, load_model

    ckpt = load_eval_checkpoint(advent_file)
    assert ckpt["format"] == "advent"
    model = load_model(paper_cfg(), advent_file)  # strict: raises on any missing / unexpected key
    own = set(model.state_dict())
    loaded = set(ckpt["model"])
    assert loaded <= own and not {k for k in own - loaded if not k.endswith("num_batches_tracked")}
    x = torch.randn(1, 3, 49, 71, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ref = advent_model.double()
    try:
        with torch.no_grad():
            aux, main = ref(x)
            out = model.double()(x)
    finally:
        advent_model.float()
    assert out["out"].dtype == torch.float64 and out["out"].abs().max() > 1e-3
    torch.testing.assert_close(out["out"], main, rtol=1e-9, atol=1e-9 * float(main.abs().max()))
    torch.testing.assert_close(out["aux"], aux, rtol=1e-9, atol=1e-9 * float(aux.abs().max()))


def test_released_synthia_model_needs_16_classes(tmp_path):
    from seg_uda.evaluation.checkpoint_model import CheckpointMismatchError, load_model

    path = tmp_path / "SYNTHIA2Cityscapes_DeepLabv2_MinEnt.pth"
    torch.save(ResNetMulti(num_classes=16, layers=(3, 4, 23, 3)).state_dict(), path)
    synthia = REPO / "configs/synthia_to_cityscapes/minent_deeplabv2_r101.yaml"
    assert load_model(paper_cfg(synthia), path).classifier.conv2d_list[0].out_channels == 16
    with pytest.raises(CheckpointMismatchError, match="num_classes=19"):
        load_model(paper_cfg(), path)


def test_evaluate_tool_scores_a_released_advent_model(advent_file, synthcity, capsys):
    tool = load_tool("evaluate")
    data = [f"data.val.root={synthcity / 'real'}", "data.val_size=[64,32]", "data.num_workers=0"]
    assert tool.main([str(GTA5_ADVENT), str(advent_file), *data, "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "1 model(s) on cityscapes 'val' (2 images)" in out and "mIoU:" in out
    assert tool.main([str(advent_file), *data]) == 2  # no CONFIG: the file stores none
    assert "released ADVENT model" in capsys.readouterr().err
