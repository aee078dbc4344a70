"""The experiment config: every choice of a training run, as nested dataclasses that round-trip through YAML.

A run is fully described by an :class:`ExperimentConfig`; the run directory keeps it as ``config.yaml``,
which ``iirsnn train --config FILE`` reads back. :func:`config_from_dict` checks every key and type and
:meth:`ExperimentConfig.check` every value before any long work starts, raising :class:`ConfigError`
with the key's dotted name (``optimizer.lr``). ``--set optimizer.lr=3e-4`` overrides go through
:func:`apply_overrides`, whose values are read as YAML scalars or lists (``3e-4``, ``true``, ``[50, 100]``).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, also reading ``1e-3`` as a float (YAML 1.1 wants ``1.0e-3``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _yaml(text: str) -> object:
    return yaml.load(text, Loader=_Loader)


#: What reading YAML raises for text that is not valid YAML: PyYAML's own errors, and the builtin ones
#: that its safe constructors let through for malformed tagged scalars (``!!int ""`` IndexError,
#: ``!!bool x`` KeyError, ``!!timestamp x`` AttributeError, ``!!float x`` ValueError) and its recursive
#: composer for deep nesting (RecursionError).
_YAML_ERRORS = (yaml.YAMLError, ValueError, TypeError, AttributeError, IndexError, KeyError, RecursionError)


#: Values a config file may make per character of its text once its YAML aliases are expanded (+ 1000).
ALIAS_EXPANSION = 10


class ConfigError(ValueError):
    """A config key that is unknown, of the wrong type or out of range; the message names the key."""


@dataclass
class DataConfig:
    """Which task (see :mod:`iirsnn.data.tasks`) and how it is split."""

    name: str = "spike-timing"
    root: str | None = None  # the data root; None: $IIRSNN_DATA
    options: dict = field(default_factory=dict)  # the task's own options (it names the ones it knows)
    val_fraction: float = 0.1  # carved from the training split with split_seed, when the task has no own
    split_seed: int = 0


@dataclass
class EncoderConfig:
    """How a batch of the task's input becomes the network's input, on the device (see ``train/encoders.py``)."""

    name: str = "none"  # "none", "current_lif", "bernoulli_rate", "repeat"
    options: dict = field(default_factory=dict)


@dataclass
class ModelConfig:
    """The network: a spiking network of :func:`iirsnn.models.from_spec`, or the LSTM baseline."""

    kind: str = "snn"  # "snn" or "lstm"
    spec: str = "64-5"  # from_spec notation, output layer included (it must match the task's outputs)
    synapse: str = "dual_exp"
    tau_m: float = 4.0
    tau_s: float = 1.0
    options: dict = field(default_factory=dict)  # from_spec options (iirsnn.models.DEFAULT_OPTIONS)
    hidden: int = 300  # LSTM units per layer
    layers: int = 2  # LSTM layers
    # [low, high]: before training, scale each spiking layer's weights until it fires at a rate in this range
    # on calibrate_samples training samples (iirsnn.init.calibrate_); None: the initialisation as built
    calibrate: list | None = None
    calibrate_samples: int = 40


@dataclass
class LossConfig:
    """``count_ce``: cross-entropy of spike counts (classification; the LSTM's logits use plain
    cross-entropy); ``van_rossum``: filtered-trace distance to a target spike train (reconstruction)."""

    name: str = "count_ce"
    options: dict = field(default_factory=dict)  # e.g. {"scale": 1.0} or {"tau_m": 8, "tau_s": 2}


@dataclass
class OptimizerConfig:
    name: str = "adam"  # "adam", "adamw" or "sgd"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9  # sgd only
    grad_clip: float | None = None  # max gradient norm; None: no clipping


@dataclass
class ScheduleConfig:
    name: str = "none"  # "none", "multistep" (milestones, gamma) or "cosine" (to lr * min_factor)
    milestones: list = field(default_factory=list)
    gamma: float = 0.1
    min_factor: float = 0.0
    warmup_epochs: int = 0  # linear warm-up from lr / (warmup_epochs + 1), before the schedule


def _series(default: float) -> object:
    return field(default=default, metadata={"inputs": "series"})


def _image(default: float) -> object:
    return field(default=default, metadata={"inputs": "image"})


@dataclass
class AugmentConfig:
    """Training-time augmentation (``train/augment.py``) of series or of static images
    (``train/augment_image.py``); every transform off by default. Each field's ``metadata["inputs"]``
    says which inputs it applies to."""

    warp: float = _series(0.0)  # stretch each sample in time by a factor in [1 - warp, 1 + warp]
    shift: int = _series(0)  # delay each sample by 0 .. shift frames
    scale: float = _series(0.0)  # multiply each sample by exp(N(0, scale^2))
    noise: float = _series(0.0)  # add N(0, noise^2) to every value
    time_mask: int = _series(0)  # zero a run of up to this many frames
    channel_mask: int = _series(0)  # zero a run of up to this many channels
    crop: float = _image(0.0)  # crop each image to a random area fraction in [1 - crop, 1], resized back
    rotate: float = _image(0.0)  # rotate each image by up to this many degrees either way
    image_skip: float = _image(0.0)  # the probability that an image is left as it is (the authors: 0.5)


@dataclass
class ExperimentConfig:
    """One training run. ``epochs`` and ``batch`` are per run; ``seed`` fixes initialisation, data order,
    corruption and encoding noise; ``test_every_epoch`` also scores the test split each epoch, for the
    maximum-over-epochs figure that the paper's authors report (selection on validation is the headline)."""

    experiment: str = "custom"
    data: DataConfig = field(default_factory=DataConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    epochs: int = 10
    batch: int = 32
    eval_batch: int = 256
    seed: int = 0
    precision: str = "fp32"  # "fp32" or "bf16-mixed"
    device: str = "auto"  # "auto" (CUDA when present), "cpu", "cuda", "cuda:1", ...
    threads: int | None = None  # CPU threads; None: torch's default
    checkpoint_every: int = 0  # also checkpoint every this many training steps; 0: at the end of each epoch only
    test_every_epoch: bool = True
    nonfinite: str = "stop"  # a NaN or Inf loss or gradient: "stop" the run (naming the layer) or "skip" the step

    def check(self) -> None:
        """Raise :class:`ConfigError` naming the first impossible value."""
        _choice("model.kind", self.model.kind, ("snn", "lstm"))
        _choice("loss.name", self.loss.name, ("count_ce", "van_rossum"))
        _choice("optimizer.name", self.optimizer.name, ("adam", "adamw", "sgd"))
        _choice("schedule.name", self.schedule.name, ("none", "multistep", "cosine"))
        _choice("encoder.name", self.encoder.name, ("none", "current_lif", "bernoulli_rate", "repeat"))
        _choice("precision", self.precision, ("fp32", "bf16-mixed"))
        _choice("nonfinite", self.nonfinite, ("stop", "skip"))
        for key in ("epochs", "batch", "eval_batch"):
            _at_least(key, getattr(self, key), 1)
        _at_least("checkpoint_every", self.checkpoint_every, 0)
        _at_least("seed", self.seed, 0)
        for key in ("shift", "time_mask", "channel_mask", "scale", "noise"):
            value = getattr(self.augment, key)
            if not (value >= 0 and math.isfinite(value)):
                raise ConfigError(f"augment.{key} must be a finite number >= 0, got {value}")
        if not 0 <= self.augment.warp < 1:
            raise ConfigError(f"augment.warp must lie in [0, 1), got {self.augment.warp}")
        if not 0 <= self.augment.crop < 1:
            raise ConfigError(f"augment.crop must lie in [0, 1) (a crop keeps 1 - crop of the area at least), "
                              f"got {self.augment.crop}")
        if not 0 <= self.augment.rotate <= 180:
            raise ConfigError(f"augment.rotate must lie in [0, 180] degrees, got {self.augment.rotate}")
        if not 0 <= self.augment.image_skip < 1:
            raise ConfigError(f"augment.image_skip must lie in [0, 1), got {self.augment.image_skip}")
        if self.augment.image_skip and not (self.augment.crop or self.augment.rotate):
            raise ConfigError("augment.image_skip is the probability of skipping crop and rotate; set augment.crop "
                              "or augment.rotate too")
        _at_least("schedule.warmup_epochs", self.schedule.warmup_epochs, 0)
        if self.threads is not None:
            _at_least("threads", self.threads, 1)
        _positive("optimizer.lr", self.optimizer.lr)
        _at_least("optimizer.weight_decay", self.optimizer.weight_decay, 0)
        if self.optimizer.grad_clip is not None:
            _positive("optimizer.grad_clip", self.optimizer.grad_clip)
        if not 0 <= self.data.val_fraction < 1:
            raise ConfigError(f"data.val_fraction must lie in [0, 1), got {self.data.val_fraction}")
        if not 0 < self.schedule.gamma <= 1:
            raise ConfigError(f"schedule.gamma must lie in (0, 1], got {self.schedule.gamma}")
        if not 0 <= self.schedule.min_factor <= 1:
            raise ConfigError(f"schedule.min_factor must lie in [0, 1], got {self.schedule.min_factor}")
        if any(not isinstance(m, int) or isinstance(m, bool) or m < 1 for m in self.schedule.milestones):
            raise ConfigError(f"schedule.milestones must be positive epoch numbers, got {self.schedule.milestones}")
        if self.model.calibrate is not None:
            c = self.model.calibrate
            if len(c) != 2 or not all(isinstance(v, (int, float)) for v in c) or not 0 <= c[0] < c[1] <= 1:
                raise ConfigError(f"model.calibrate must be [low, high] with 0 <= low < high <= 1, got {c}")
            _at_least("model.calibrate_samples", self.model.calibrate_samples, 1)
        if self.model.kind == "snn":
            _positive("model.tau_m", self.model.tau_m)
            _positive("model.tau_s", self.model.tau_s)
        else:
            _at_least("model.hidden", self.model.hidden, 1)
            _at_least("model.layers", self.model.layers, 1)
        if self.device != "auto" and not (self.device == "cpu" or self.device.startswith("cuda")):
            raise ConfigError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {self.device!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _choice(key: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{key} must be one of {list(allowed)}, got {value!r}")


def _at_least(key: str, value: float, low: float) -> None:
    if value < low:
        raise ConfigError(f"{key} must be >= {low}, got {value}")


def _positive(key: str, value: float) -> None:
    if not (value > 0 and math.isfinite(value)):
        raise ConfigError(f"{key} must be a positive finite number, got {value}")


def config_from_dict(data: dict, base: ExperimentConfig | None = None) -> ExperimentConfig:
    """An :class:`ExperimentConfig` from nested mappings (a YAML file's content), starting from ``base``
    (default: the defaults); every key must exist and every value have the field's type."""
    config = copy.deepcopy(base) if base is not None else ExperimentConfig()
    config = _merged(config, data, "")
    config.check()
    return config


def _merged(instance, data: object, prefix: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'the config'} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(type(instance))
    names = {f.name for f in dataclasses.fields(instance)}
    changes = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in names:
            where = f" of {prefix.rstrip('.')}" if prefix else ""
            raise ConfigError(f"unknown config key {dotted!r}; known keys{where}: {sorted(names)}")
        current = getattr(instance, key)
        if dataclasses.is_dataclass(current):
            changes[key] = _merged(dataclasses.replace(current), value, f"{dotted}.")
        else:
            changes[key] = _typed(dotted, value, hints[key])
    return dataclasses.replace(instance, **changes)


def _typed(key: str, value: object, hint: object) -> object:
    """``value`` checked against the field type ``hint`` (ints are accepted for floats)."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union \
        else (hint,)
    for option in options:
        if option is type(None) and value is None:
            return None
        if option is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if option in (str, bool, dict, list) and isinstance(value, option):
            return dict(value) if option is dict else list(value) if option is list else value
    names = " or ".join("null" if o is type(None) else getattr(o, "__name__", str(o)) for o in options)
    raise ConfigError(f"{key} must be {names}, got {value!r} ({type(value).__name__})")


def apply_overrides(config: ExperimentConfig, overrides: list[str]) -> ExperimentConfig:
    """``config`` with each ``key.sub=value`` of ``overrides`` applied (values read as YAML); a key under an
    ``options`` mapping may be new (``model.options.dropout=0.3``): the consumer of the options checks it."""
    data: dict = {}
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"an override must look like key.sub=value, got {item!r}")
        try:
            value = _yaml(text) if text.strip() else ""
        except _YAML_ERRORS as exc:
            raise ConfigError(f"override {item!r}: the value is not a YAML value ({exc})") from exc
        parts = key.split(".")
        if "options" in parts[:-1]:  # merge into the existing options mapping
            head = parts[: parts.index("options") + 1]
            pending = _pending(data, head)
            options = dict(pending if pending is not None else _get(config, head))
            _set(options, parts[len(head):], value)
            _set(data, head, options)
        else:
            _set(data, parts, value)
    return config_from_dict(data, config)


def _pending(data: dict, parts: list[str]) -> dict | None:
    """The mapping at ``parts`` of the overrides collected so far, if an earlier override set it."""
    for part in parts:
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def _get(config: ExperimentConfig, parts: list[str]) -> object:
    node: object = config
    for i, part in enumerate(parts):
        if not hasattr(node, part):
            raise ConfigError(f"unknown config key {'.'.join(parts[: i + 1])!r}")
        node = getattr(node, part)
    return node


def _set(data: dict, parts: list[str], value: object) -> None:
    for part in parts[:-1]:
        data = data.setdefault(part, {})
    data[parts[-1]] = value


def load_config(path: str | Path, base: ExperimentConfig | None = None) -> ExperimentConfig:
    """An :class:`ExperimentConfig` from a YAML file (safe loading: plain values only, nothing runs)."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
        data = _yaml(text)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {exc.start})") from None
    except _YAML_ERRORS as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {type(exc).__name__}: {exc}") from exc
    budget = ALIAS_EXPANSION * len(text) + 1000
    if _expanded_size(data, budget) > budget:
        raise ConfigError(f"config file {path}: its YAML aliases expand to more than {budget} values (an alias "
                          "bomb or an alias that contains itself?)")
    try:
        return config_from_dict({} if data is None else data, base)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _expanded_size(data: object, budget: int) -> int:
    """The number of keys and values in ``data`` (nested dicts and lists) with every shared one counted each
    time it appears, as writing the config out expands YAML aliases; counting stops past ``budget``."""
    stack, count = [data], 0
    while stack and count <= budget:
        node = stack.pop()
        count += 1
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return count


def dump_config(config: ExperimentConfig) -> str:
    """The YAML text of ``config`` (what :func:`load_config` reads back)."""
    return yaml.safe_dump(config.to_dict(), sort_keys=False)
