"""Config system: _base_ inheritance, overrides, typed validation and helpful errors."""
from pathlib import Path

import pytest
import yaml

from seg_uda.config import ConfigError, config_from_dict, load_config, save_config
from seg_uda.config.loader import deep_merge, load_config_dict, parse_overrides
from conftest import REPO



def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_base_inheritance_merges_in_order(tmp_path):
    write(tmp_path / "base/a.yaml", "optim: {lr: 0.1, momentum: 0.5}\nschedule: {max_iters: 10}\n")
    write(tmp_path / "base/b.yaml", "optim: {lr: 0.2}\n")
    exp = write(tmp_path / "exp.yaml", "_base_: [base/a.yaml, base/b.yaml]\noptim: {weight_decay: 0.0}\n")
    d = load_config_dict(exp)
    assert d["optim"] == {"lr": 0.2, "momentum": 0.5, "weight_decay": 0.0}
    assert d["schedule"] == {"max_iters": 10}
    assert "_base_" not in d


def test_delete_replaces_instead_of_merging():
    merged = deep_merge({"a": {"x": 1, "y": 2}}, {"a": {"_delete_": True, "z": 3}})
    assert merged == {"a": {"z": 3}}


def test_circular_base_is_reported(tmp_path):
    write(tmp_path / "a.yaml", "_base_: b.yaml\n")
    write(tmp_path / "b.yaml", "_base_: a.yaml\n")
    with pytest.raises(ConfigError, match="circular"):
        load_config_dict(tmp_path / "a.yaml")


def test_overrides_parse_yaml_values():
    o = parse_overrides(["optim.lr=1e-3", "model.multi_level=false", "data.source_size=[32, 16]", "name=x"])
    assert o == {"optim": {"lr": 1e-3}, "model": {"multi_level": False},
                 "data": {"source_size": [32, 16]}, "name": "x"}
    with pytest.raises(ConfigError, match="key.sub=value"):
        parse_overrides(["optim.lr"])


def test_unsafe_yaml_tag_is_rejected(tmp_path):
    p = write(tmp_path / "evil.yaml", "name: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config_dict(p)


def test_missing_file_named(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml")


def _minimal(**over):
    d = {
        "name": "t",
        "data": {"source": {"type": "gta5", "root": "/nonexistent"}, "target": None, "val": None},
        "model": {"name": "deeplabv2", "encoder_name": "resnet18", "multi_level": False},
        "method": {"name": "source_only"},
    }
    return deep_merge(d, over)


def test_valid_config_maps_component_kwargs():
    cfg = config_from_dict(_minimal())
    assert cfg.model.args == {"encoder_name": "resnet18", "multi_level": False}
    assert cfg.method.name == "source_only"
    assert cfg.optim.lr == pytest.approx(2.5e-4)


def test_retired_key_of_old_configs_still_loads_and_is_dropped():
    cfg = config_from_dict(_minimal(data={"val_batch_size": 4}))  # configs saved before it was retired
    assert not hasattr(cfg.data, "val_batch_size")
    with pytest.raises(ConfigError, match="val_batch_sizes"):
        config_from_dict(_minimal(data={"val_batch_sizes": 4}))  # a typo is still an unknown key


def test_unknown_top_level_key_names_key_and_valid_keys():
    with pytest.raises(ConfigError) as e:
        config_from_dict(_minimal(optimm={"lr": 1}))
    assert "'optimm'" in str(e.value) and "optim" in str(e.value) and "schedule" in str(e.value)


def test_unknown_nested_key_suggests_close_match():
    with pytest.raises(ConfigError) as e:
        config_from_dict(_minimal(optim={"lrr": 0.1}))
    msg = str(e.value)
    assert "optim.lrr" in msg and "Did you mean 'lr'" in msg and "momentum" in msg


def test_wrong_type_names_key():
    with pytest.raises(ConfigError, match="schedule.max_iters"):
        config_from_dict(_minimal(schedule={"max_iters": "many"}))
    with pytest.raises(ConfigError, match="data.hflip"):
        config_from_dict(_minimal(data={"hflip": "yes"}))


@pytest.mark.parametrize("key", ["eval_interval", "ckpt_interval", "image_log_interval", "diagnostics_interval"])
def test_negative_interval_names_key(key):
    with pytest.raises(ConfigError, match=f"'schedule.{key}' must be >= 0"):
        config_from_dict(_minimal(schedule={key: -1}))


def test_invalid_choice_lists_options():
    with pytest.raises(ConfigError) as e:
        config_from_dict(_minimal(schedule={"amp": "fp8"}))
    assert "schedule.amp" in str(e.value) and "bf16" in str(e.value) and "fp16" in str(e.value)


def test_unknown_registry_name_lists_valid_names():
    with pytest.raises(ConfigError) as e:
        config_from_dict(_minimal(method={"name": "advnet"}))
    msg = str(e.value)
    assert "method.name" in msg and "advent" in msg and "source_only" in msg


def test_unknown_component_kwarg_lists_constructor_args():
    with pytest.raises(ConfigError) as e:
        config_from_dict(_minimal(model={"encoder_nmae": "resnet18"}))
    assert "model.encoder_nmae" in str(e.value) and "encoder_name" in str(e.value)
    with pytest.raises(ConfigError, match="data.source.rooot"):
        config_from_dict(_minimal(data={"source": {"rooot": "x"}}))


def test_injected_kwarg_cannot_be_set():
    with pytest.raises(ConfigError, match="model.num_classes"):
        config_from_dict(_minimal(model={"num_classes": 5}))


def test_method_keys_are_checked_against_the_method_or_its_preset():
    target = {"data": {"target": {"type": "cityscapes", "root": "/nonexistent"}}}
    with pytest.raises(ConfigError) as e:  # minent is a preset of AdvEnt without the adversarial arguments
        config_from_dict(_minimal(method={"name": "minent", "lambda_adv_main": 1e-3}, **target))
    msg = str(e.value)
    assert msg == ("unknown config key 'method.lambda_adv_main'. Did you mean 'lambda_cp_main'? Valid keys: "
                   "class_prior, cp_mu, lambda_cp_aux, lambda_cp_main, lambda_ent_aux, lambda_ent_main, "
                   "lambda_seg_aux, lambda_seg_main, multi_level")
    with pytest.raises(ConfigError, match="method.lambda_ent_main"):  # types still checked through the preset
        config_from_dict(_minimal(method={"name": "minent", "lambda_ent_main": "big"}, **target))
    for name, key in (("dann", "feat_channels"), ("fda", "pixel_mean"), ("advent", "num_classes")):
        with pytest.raises(ConfigError, match=f"'method.{key}' is set automatically"):
            config_from_dict(_minimal(method={"name": name, key: 4}, **target))
    openset = {"data": {**target["data"], "openset": {"enabled": True, "private_classes": ["train"]}}}
    cfg = config_from_dict(_minimal(method={"name": "osbp_minent", "entropy": False, "grl_max": 0.5}, **openset))
    assert cfg.method.args == {"entropy": False, "grl_max": 0.5}


def test_method_without_its_data_fails_early():
    with pytest.raises(ConfigError, match="data.target"):
        config_from_dict(_minimal(method={"name": "advent"}))


def test_resolved_config_roundtrip(tmp_path):
    cfg = config_from_dict(_minimal(optim={"lr": 0.5}))
    save_config(cfg, tmp_path / "config.yaml")
    again = load_config(tmp_path / "config.yaml")
    assert again == cfg
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["model"]["encoder_name"] == "resnet18"


@pytest.mark.parametrize("path", sorted(str(p.relative_to(REPO)) for p in (REPO / "configs").rglob("*.yaml")
                                        if "_base_" not in p.parts))
def test_every_shipped_experiment_config_validates(path):
    cfg = load_config(REPO / path)
    assert cfg.schedule.max_iters > 0
