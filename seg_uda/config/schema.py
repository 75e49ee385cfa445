"""Typed experiment config: dataclasses per concern, validated before any heavy work.

Fixed sections (optim, schedule, ...) are plain dataclasses. Pluggable components
(datasets, model, method) are `{name: ..., **kwargs}` mappings whose kwargs are checked
against the registered constructor's signature, so a typo names the key and the valid ones.
"""
from __future__ import annotations

import dataclasses
import difflib
import inspect
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Dict, List, Literal, Mapping, Optional, Tuple

from .errors import ConfigError


# ----------------------------------------------------------------------------- sections
@dataclass
class OpenSetConfig:
    """Open-set protocol (see seg_uda.openset): classes private to the target become one *unknown* class K.

    ``private_classes`` (train ids or names of the data.num_classes space) are ignored (255) in the source and
    merged into unknown in the val labels; K = num_classes - len(private_classes). Pixels a val dataset marks
    private itself (``load_private: true``: SynthCity animal/tuk-tuk, IDD autorickshaw/animal) are unknown too.
    An open-set method (osbp*) gets a (K+1)-way head; other methods a K-way one (post-hoc scores at eval).
    """

    enabled: bool = False
    private_classes: List[Any] = field(default_factory=list)
    calibration: Optional[Dict[str, Any]] = None  # held-out labelled source frames for post-hoc thresholds
    calibration_fraction: float = 0.05  # post-hoc threshold flags this fraction of calibration pixels


@dataclass
class DataConfig:
    """Datasets and the input pipeline. Sizes are (width, height) in pixels."""

    source: Optional[Dict[str, Any]] = None  # {type: gta5, root: ..., **dataset kwargs}
    target: Optional[Dict[str, Any]] = None  # unlabelled target train split (labelled for the oracle)
    val: Optional[Dict[str, Any]] = None  # labelled target val split
    num_classes: int = 19
    source_size: List[int] = field(default_factory=lambda: [640, 360])
    target_size: List[int] = field(default_factory=lambda: [512, 256])
    val_size: Optional[List[int]] = field(default_factory=lambda: [512, 256])  # image resize; labels stay full size
    source_crop: Optional[List[int]] = None  # random crop after resizing to source_size; None = no crop
    target_crop: Optional[List[int]] = None
    scale_range: Optional[List[float]] = None  # random rescale before the crop, e.g. [0.75, 1.25]
    hflip: bool = True
    color_jitter: float = 0.0
    normalization: Literal["imagenet", "lite0", "caffe"] = "imagenet"  # caffe: ADVENT's BGR 0-255 minus mean
    resize_backend: Literal["cv2", "pil"] = "cv2"  # pil: PIL bicubic images / nearest labels, as ADVENT's loaders
    batch_size: int = 1  # per process and per domain
    num_workers: int = 2
    max_val_images: Optional[int] = None  # evaluate on the first N val images only (quick checks)
    rcs_temperature: Optional[float] = None  # source rare-class sampling (DAFormer: 0.01); None = off
    rcs_min_pixels: int = 3000  # RCS draws an image among those with >= this many pixels of the class (label res)
    openset: OpenSetConfig = field(default_factory=OpenSetConfig)  # disabled: closed-set


@dataclass
class ModelConfig:
    """The segmenter: a MODELS registry name plus its constructor kwargs (num_classes is injected)."""

    name: str = "deeplabv2"
    bn_policy: Literal["frozen", "frozen_affine", "train", "sync"] = "frozen"
    channels_last: bool = False
    # segmenter weights to start from (a seg_uda checkpoint, e.g. a source-only run's, or a released ADVENT model);
    # optimizer, schedule and iteration start afresh. Ignored on --resume, whose checkpoint holds the weights.
    init_from: Optional[str] = None
    args: Dict[str, Any] = field(default_factory=dict)


@dataclass
class MethodConfig:
    """The UDA method: a METHODS registry name plus its constructor kwargs."""

    name: str = "source_only"
    args: Dict[str, Any] = field(default_factory=dict)


@dataclass
class OptimConfig:
    """Segmenter SGD (ADVENT defaults) and discriminator Adam."""

    lr: float = 2.5e-4
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False
    head_lr_mult: float = 10.0  # classifier heads train at lr * head_lr_mult
    backbone_lr_mult: float = 1.0  # transfer control: < 1 trains the ImageNet backbone slower
    freeze_backbone: bool = False  # transfer control: backbone gets no updates at all
    disc_lr: float = 1e-4
    disc_betas: List[float] = field(default_factory=lambda: [0.9, 0.99])
    disc_poly: bool = False  # true: disc_lr follows the segmenter's poly decay (ADVENT); false: constant disc_lr
    grad_clip: Optional[float] = None  # max global grad norm; None disables


@dataclass
class ScheduleConfig:
    """Iteration budget, LR schedule, precision and the logging/eval/checkpoint cadence."""

    max_iters: int = 120000
    warmup_iters: int = 0
    warmup_ratio: float = 0.1  # lr starts at warmup_ratio * lr and rises linearly
    poly_power: float = 0.9
    poly_horizon: Optional[int] = None  # iteration where the poly LR would reach 0; null = max_iters (ADVENT: 250000)
    eval_interval: int = 2000  # 0 disables periodic evaluation
    ckpt_interval: int = 2000  # 0: a checkpoint only where training stops
    log_interval: int = 10
    image_log_interval: int = 0  # TensorBoard sample images every N iters; 0 disables
    diagnostics_interval: int = 0  # alignment diagnostics (docs/diagnostics.md) every N iters; 0 disables
    keep_last: int = 3  # numbered checkpoints kept besides last.pth
    amp: Literal["none", "bf16", "fp16"] = "none"
    # torch.compile the segmenter's training forward (and, through AOTAutograd, its backward). Pays off on a GPU;
    # on a CPU, inductor's C++ code generation takes many minutes (docs/speed.md). Where compilation fails the
    # step runs eagerly, with a warning.
    compile: bool = False
    compile_backend: str = "inductor"  # any torch.compile backend; "aot_eager" traces without code generation
    nonfinite: Literal["stop", "skip"] = "stop"  # on a NaN/inf loss: stop the run, or skip the step


@dataclass
class Config:
    """A whole experiment."""

    name: str = "experiment"
    seed: int = 0
    work_dir: Optional[str] = None  # default: runs/<name>
    device: Literal["auto", "cpu", "cuda"] = "auto"
    deterministic: bool = True
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)

    def to_dict(self) -> Dict[str, Any]:
        """Plain nested dict in the YAML layout (component args flattened back)."""
        d = dataclasses.asdict(self)
        for sec in ("model", "method"):
            args = d[sec].pop("args")
            d[sec].update(args)
        return d


# dataclass sections whose extra keys are component kwargs (collected into `args`)
_COMPONENT_SECTIONS = {ModelConfig: "model", MethodConfig: "method"}


# ----------------------------------------------------------------------------- type checks
def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def check_type(value: Any, tp: Any, key: str) -> Any:
    """Check `value` against annotation `tp`; return it (ints are accepted for floats, lists for tuples)."""
    if tp is Any or tp is inspect.Parameter.empty:
        return value
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return check_type(value, a, key)
            except ConfigError:
                pass
        raise ConfigError(f"invalid value {value!r} for '{key}': expected {_type_name(tp)}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(
                f"invalid value {value!r} for '{key}'. Valid options: {', '.join(map(str, args))}"
            )
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"invalid value {value!r} for '{key}': expected a list")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"invalid value {value!r} for '{key}': expected {len(args)} items")
            return tuple(check_type(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        inner = args[0] if args else Any
        return [check_type(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"invalid value {value!r} for '{key}': expected a mapping")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"invalid value {value!r} for '{key}': expected true/false")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"invalid value {value!r} for '{key}': expected a number")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"invalid value {value!r} for '{key}': expected an integer")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"invalid value {value!r} for '{key}': expected a string")
        return value
    if isinstance(tp, type):
        if not isinstance(value, tp):
            raise ConfigError(f"invalid value {value!r} for '{key}': expected {tp.__name__}")
    return value


def _unknown_key(key: str, valid: List[str]) -> ConfigError:
    leaf = key.rsplit(".", 1)[-1]
    close = difflib.get_close_matches(leaf, valid, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return ConfigError(f"unknown config key '{key}'.{hint} Valid keys: {', '.join(sorted(valid))}")


#: keys that older configs and checkpoints may hold: accepted and dropped (with why), so that they still load
RETIRED_KEYS = {"data.val_batch_size": "evaluation always runs one image at a time (frames may differ in size)"}


def build_dataclass(cls: type, data: Mapping[str, Any], prefix: str = "") -> Any:
    """Build dataclass `cls` from a mapping, recursing into nested sections, checking every key."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"section '{prefix.rstrip('.') or '<root>'}' must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: Dict[str, Any] = {}
    extra: Dict[str, Any] = {}
    for key, value in data.items():
        full = f"{prefix}{key}"
        if full in RETIRED_KEYS:
            continue
        if key not in fields or (key == "args" and cls in _COMPONENT_SECTIONS):
            if cls in _COMPONENT_SECTIONS:
                extra[key] = value  # checked later against the component's constructor
                continue
            raise _unknown_key(full, list(fields))
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = build_dataclass(tp, value or {}, prefix=f"{full}.")
        else:
            kwargs[key] = check_type(value, tp, full)
    if cls in _COMPONENT_SECTIONS:
        kwargs["args"] = extra
    return cls(**kwargs)


# ----------------------------------------------------------------------------- components
def check_component_kwargs(
    factory: Any, kwargs: Mapping[str, Any], section: str, injected: Tuple[str, ...] = ()
) -> Dict[str, Any]:
    """Check `kwargs` against `factory`'s signature (unknown names, types); injected names are forbidden."""
    sig = inspect.signature(factory)
    params = {n: p for n, p in sig.parameters.items() if n != "self" and p.kind not in (p.VAR_POSITIONAL,)}
    accepts_any = any(p.kind == p.VAR_KEYWORD for p in params.values())
    valid = [n for n, p in params.items() if p.kind != p.VAR_KEYWORD and n not in injected]
    target = inspect.unwrap(factory)  # a registry preset wraps its class
    try:
        hints = typing.get_type_hints(target.__init__ if inspect.isclass(target) else target)
    except Exception:  # unresolvable annotations: skip type checks, still check names
        hints = {}
    out: Dict[str, Any] = {}
    for key, value in kwargs.items():
        full = f"{section}.{key}"
        if key in injected:
            raise ConfigError(f"'{full}' is set automatically from the rest of the config; remove it")
        if key not in params or params[key].kind == inspect.Parameter.VAR_KEYWORD:
            if accepts_any:
                out[key] = value
                continue
            raise _unknown_key(full, valid)
        out[key] = check_type(value, hints.get(key, Any), full) if value is not None else None
    missing = [
        n for n in valid
        if params[n].default is inspect.Parameter.empty and n not in out
        and params[n].kind not in (inspect.Parameter.VAR_KEYWORD,)
    ]
    if missing:
        raise ConfigError(f"section '{section}' is missing required key(s): {', '.join(missing)}")
    return out


def _registry_get(registry: Any, name: Any, key: str) -> Any:
    if not isinstance(name, str):
        raise ConfigError(f"'{key}' must be a string naming one of: {', '.join(registry.names())}")
    if name not in registry:
        close = difflib.get_close_matches(name, registry.names(), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"invalid value '{name}' for '{key}'.{hint} Valid options: {', '.join(registry.names())}")
    return registry.get(name)


DATASET_INJECTED = ("transform", "num_classes")
MODEL_INJECTED = ("num_classes", "bn_policy")
# methods declare theirs: UDAMethod.derived_args (filled in by the method's from_config)


def validate_components(cfg: Config) -> Config:
    """Check the registry names and constructor kwargs of datasets, model and method."""
    from ..data import DATASETS
    from ..methods import METHODS
    from ..models import MODELS

    for split in ("source", "target", "val"):
        spec = getattr(cfg.data, split)
        if spec is None:
            continue
        key = f"data.{split}"
        spec = dict(spec)
        if "type" not in spec:
            raise ConfigError(f"'{key}.type' is required. Valid options: {', '.join(DATASETS.names())}")
        factory = _registry_get(DATASETS, spec.pop("type"), f"{key}.type")
        kwargs = check_component_kwargs(factory, spec, key, DATASET_INJECTED)
        setattr(cfg.data, split, {"type": getattr(cfg.data, split)["type"], **kwargs})
    _validate_openset(cfg)
    for size_key in ("source_size", "target_size", "val_size", "source_crop", "target_crop"):
        size = getattr(cfg.data, size_key)
        if size is not None and (len(size) != 2 or min(size) <= 0):
            raise ConfigError(f"'data.{size_key}' must be [width, height] with positive values, got {size}")

    model_cls = _registry_get(MODELS, cfg.model.name, "model.name")
    cfg.model.args = check_component_kwargs(model_cls, cfg.model.args, "model", MODEL_INJECTED)
    method_cls = _registry_get(METHODS, cfg.method.name, "method.name")
    cfg.method.args = check_component_kwargs(method_cls, cfg.method.args, "method", tuple(method_cls.derived_args))
    if method_cls.unknown_head and not cfg.data.openset.enabled:
        raise ConfigError(f"method '{cfg.method.name}' is open-set: set data.openset.enabled=true "
                          "(and data.openset.private_classes / data.val.load_private)")

    need = []
    if method_cls.uses_source and cfg.data.source is None:
        need.append("data.source")
    if (method_cls.uses_target or method_cls.uses_target_labels) and cfg.data.target is None:
        need.append("data.target")
    if need:
        raise ConfigError(f"method '{cfg.method.name}' needs {' and '.join(need)}, which is not set")
    for key in ("max_iters", "log_interval"):
        if getattr(cfg.schedule, key) <= 0:
            raise ConfigError(f"'schedule.{key}' must be positive, got {getattr(cfg.schedule, key)}")
    for key in ("eval_interval", "ckpt_interval", "image_log_interval", "diagnostics_interval"):
        if getattr(cfg.schedule, key) < 0:
            raise ConfigError(f"'schedule.{key}' must be >= 0 (0: off), got {getattr(cfg.schedule, key)}")
    horizon = cfg.schedule.poly_horizon
    if horizon is not None and horizon < cfg.schedule.max_iters:
        raise ConfigError(f"'schedule.poly_horizon' must be null or >= schedule.max_iters "
                          f"({cfg.schedule.max_iters}), got {horizon}")
    if cfg.data.batch_size <= 0:
        raise ConfigError(f"'data.batch_size' must be positive, got {cfg.data.batch_size}")
    if cfg.data.rcs_temperature is not None and cfg.data.rcs_temperature <= 0:
        raise ConfigError(f"'data.rcs_temperature' must be positive (DAFormer: 0.01) or null to disable "
                          f"rare-class sampling, got {cfg.data.rcs_temperature}")
    if cfg.data.rcs_min_pixels < 0:
        raise ConfigError(f"'data.rcs_min_pixels' must be >= 0, got {cfg.data.rcs_min_pixels}")
    return cfg


def _validate_openset(cfg: Config) -> None:
    """Check data.openset: private class names/ids, a way to get unknown val pixels, the calibration split."""
    oc = cfg.data.openset
    if not oc.enabled:
        return
    from ..data.openset import OpenSetProtocol

    try:
        OpenSetProtocol(cfg.data.num_classes, oc.private_classes)
    except ValueError as e:
        raise ConfigError(f"'data.openset.private_classes': {e}") from None
    val = cfg.data.val or {}
    if val and not oc.private_classes and not val.get("load_private", False):
        raise ConfigError("data.openset is enabled but no pixel can be unknown: list "
                          "'data.openset.private_classes' or set 'data.val.load_private: true'")
    if not 0.0 < oc.calibration_fraction < 1.0:
        raise ConfigError(f"'data.openset.calibration_fraction' must be in (0, 1), got {oc.calibration_fraction}")
    if oc.calibration is not None:
        from ..data import DATASETS

        spec = dict(oc.calibration)
        if "type" not in spec:
            raise ConfigError("'data.openset.calibration.type' is required. "
                              f"Valid options: {', '.join(DATASETS.names())}")
        factory = _registry_get(DATASETS, spec.pop("type"), "data.openset.calibration.type")
        kwargs = check_component_kwargs(factory, spec, "data.openset.calibration", DATASET_INJECTED)
        oc.calibration = {"type": oc.calibration["type"], **kwargs}
