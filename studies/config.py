"""StudyConfig: the embedded defaults, a study file (TOML), then CLI flags — strictly validated.

One field table drives the study file's keys, the CLI flags and their validation, so a key means the
same thing everywhere (``batch_size`` in a study file is ``--batch-size`` on the command line). The
table is made from declarations (:func:`search.settings.setting`): the study's own settings below,
the training settings (:class:`search.settings.TrainSettings`), the compound-scaling settings
(:class:`ScaleSettings`) and those of a full training run (:class:`RunSettings`). A study file may hold
the keys of every command; each command takes its own.

A few defaults depend on the study's dimensionality: a 3-D study (``--dims 3``) that does not set them
takes :data:`DIMS_DEFAULTS` (the bundled volumes, a smaller input, a base sized for it).
"""
from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomllib

from effnas.search import samplers
from effnas.search.data import kinds
from effnas.search.executors import EXECUTORS
from effnas.search.settings import ExecutorSettings, RunSettings, TrainSettings, declared, setting
from effnas.search.utils.files import read_bounded
from effnas.space.arch import MAX_CHANNELS
from effnas.space.compound import MAX_COEFFICIENT, MAX_PHI
from effnas.space.cost import MAX_RESOLUTION
from effnas.space.errors import UserError

MAX_TRIALS = 100_000  # a bound on work that would never end (a study of 1e12 trials is a typo)

DEFAULT_STORAGE = "sqlite:///runs/effnas.db"
STUDIES = ("search", "scale", "family", "confirm")
TRAINING_COMMANDS = (*STUDIES, "train")
SEARCH = ("search",)
SCALE = ("scale",)
FAMILY = ("family",)
SCALING = ("scale", "family")

# EfficientNet-B0's stem, first three stages and head: at a 16^3 input they leave 2^3 maps, where B0's
# later stages would run on 1^3 maps (and B0 whole does not learn shapes3d in a short budget).
BASE_3D = ("stem_c32 ds_r1_k3_s1_e1_c16_se0.25 ir_r2_k3_s2_e6_c24_se0.25 ir_r2_k5_s2_e6_c40_se0.25 "
           "head_c1280")
DIMS_DEFAULTS: dict[int, dict[str, Any]] = {
    2: {},  # the fields' own defaults
    # "space" holds [space] keys a study file's own [space] table overrides key by key: a 7x7x7 depthwise
    # kernel has 343 taps (12.7x a 3x3x3) and trains slowly on CPU, so the 3-D default leaves it out
    # and a scaled 16^3 input rounds to a multiple of 2 (8 would send 16 x 1.1 and 16 x 1.2 back to 16)
    3: {"study": "effnas-3d", "dataset": "shapes3d", "resolution": 16, "base": BASE_3D, "epochs": 2,
        "resolution_multiple": 2, "space": {"kernel": [3, 5]}},
}


@dataclass(frozen=True)
class ScaleSettings:
    """The compound-scaling grid of ``effnas scale`` and the family of ``effnas family``."""

    baseline: str | None = setting(None, "best | TRIAL | PRESET | ARCH (best: the chosen baseline of the NAS "
                                         "study --study)", optional=True, commands=SCALING)
    phi: float = setting(1.0, "compound coefficient at which the grid's triples are compared", low=0,
                         at_most=MAX_PHI, commands=SCALE)
    step: float = setting(0.1, "grid step", positive=True, commands=SCALE)
    tolerance: float = setting(0.1, "allowed |alpha*beta^2*gamma^k - 2|, k = the spatial dims (2 or 3)", low=0,
                               commands=SCALE)
    max_coef: float = setting(1.5, "largest coefficient on the grid", low=1, at_most=MAX_COEFFICIENT,
                              commands=SCALE)
    max_triples: int = setting(30, "refuse a grid of more triples than this, before training any", low=1,
                               commands=SCALE)
    resolution_multiple: int = setting(8, "scaled resolutions round to the nearest multiple of this", low=1,
                                       at_most=512, commands=SCALING)
    num_classes: int | None = setting(None, "classes the costs are counted for (default: the dataset's when it is "
                                            "trained on or given, else 1000)", low=1, optional=True,
                                      commands=SCALING)
    alpha: float | None = setting(None, "depth coefficient", low=1, at_most=MAX_COEFFICIENT, optional=True,
                                  commands=FAMILY)
    beta: float | None = setting(None, "width coefficient", low=1, at_most=MAX_COEFFICIENT, optional=True,
                                 commands=FAMILY)
    gamma: float | None = setting(None, "resolution coefficient", low=1, at_most=MAX_COEFFICIENT, optional=True,
                                  commands=FAMILY)
    phis: tuple[float, ...] = setting((0.0, 1.0, 2.0, 3.0), "compound coefficients of the family", low=0,
                                      at_most=MAX_PHI, commands=FAMILY, flag="--phi")
    in_channels: int | None = setting(None, "input channels the costs are counted for (default: the dataset's when "
                                            "it is trained on or given, else the baseline's)", low=1,
                                      at_most=MAX_CHANNELS, optional=True, commands=SCALING)


@dataclass(frozen=True)
class StudyConfig:
    study: str = setting("effnas", "study name", pattern=r".+", commands=STUDIES)
    storage: str = setting(DEFAULT_STORAGE, "Optuna storage URL (SQLite file, PostgreSQL, journal file)")
    dataset: str = setting("digits", f"images: {kinds.usage(2)}; volumes: {kinds.usage(3)}")
    dims: int | None = setting(None, "spatial dimensions of the networks: 2 (images) or 3 (volumes)", choices=(2, 3),
                               optional=True)
    trials: int = setting(20, "the study ends holding this many complete trials", low=1, at_most=MAX_TRIALS,
                          commands=SEARCH)
    resolution: int = setting(32, "input resolution of every trial", low=4, at_most=MAX_RESOLUTION)
    sampler: str = setting("nsga2", "search strategy", choices=tuple(samplers.SAMPLERS), commands=SEARCH)
    objectives: tuple[str, ...] = setting(("accuracy", "macs"), "objectives of a Pareto sampler: accuracy,macs or "
                                          "accuracy,macs,latency_ms (the median latency at batch 1, measured on "
                                          "this machine's --device before each trial trains)",
                                          choices=("accuracy", "macs", "latency_ms"), commands=SEARCH)
    max_macs: int | None = setting(None, "hard MACs budget, checked before training", low=1, optional=True,
                                   commands=SEARCH)
    max_params: int | None = setting(None, "hard parameter budget, checked before training", low=1, optional=True,
                                     commands=SEARCH)
    target_macs: int | None = setting(None, "T of the MnasNet reward (default: the base's MACs)", low=1,
                                      optional=True, commands=SEARCH)
    rungs: tuple[int, ...] | None = setting(None, "successive halving: the epochs of each rung, e.g. 1,3,9 (trials "
                                                  "train to the last)", optional=True, commands=SEARCH)
    eta: float = setting(3.0, "successive halving: a trial goes on past a rung only in the top 1/eta there", low=1.01,
                         at_most=100, commands=SEARCH)
    top: int = setting(3, "how many of the best (triples; front trials) are trained with --seeds seeds", low=1,
                       at_most=100, commands=("scale", "confirm"), defaults={"confirm": 5})
    seeds: int = setting(1, "trainings (seeds) of each of the --top best before one is chosen", low=1, at_most=10,
                         commands=("scale", "confirm"), defaults={"confirm": 3})
    references: tuple[str, ...] | None = setting(None, "reference architectures trained beside the candidates, e.g. "
                                                       "mobilenetv2,mnasnet-b1 (the study's base always)",
                                                 optional=True, commands=("confirm",))
    executor: str = setting("local", "where trials run", choices=tuple(EXECUTORS), commands=STUDIES)
    seed: int = setting(0, "seed of the sampler, the split and the training", low=0, at_most=2**32 - 1)
    base: str = setting("efficientnet-b0", "the architecture the space is built around (preset or arch)",
                        commands=SEARCH)
    train: TrainSettings = dataclasses.field(default_factory=TrainSettings)
    execution: ExecutorSettings = dataclasses.field(default_factory=ExecutorSettings)
    scale: ScaleSettings = dataclasses.field(default_factory=ScaleSettings)
    run: RunSettings = dataclasses.field(default_factory=RunSettings)
    space: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # the study file's [space] table
    command: str = "search"
    explicit: frozenset[str] = frozenset()  # keys set by the file or a flag, not by the defaults

    def to_dict(self) -> dict[str, Any]:
        """Every setting of this config's command, flat (as in a study file), plus the [space] table."""
        values = {f.name: f.value_of(self) for f in FIELDS if self.command in f.commands}
        return {**values, "space": dict(self.space)}


@dataclass(frozen=True)
class Field:
    """One key of the study file and one flag: its type, default, help and bounds."""

    name: str
    kind: type  # int, float, str, or tuple (of ``item``)
    default: Any
    help: str
    group: str | None  # None (StudyConfig itself) or a name of GROUPS ("train", "execution", "scale", "run")
    commands: tuple[str, ...]
    defaults: tuple[tuple[str, Any], ...] = ()  # (command, default) where a command has its own
    item: type | None = None  # the element type of a tuple field
    low: float | None = None  # inclusive
    high: float | None = None  # exclusive
    at_most: float | None = None  # inclusive
    positive: bool = False  # strictly > 0
    optional: bool = False
    choices: tuple[str | int, ...] = ()
    pattern: str | None = None
    flag_name: str | None = None

    def default_for(self, command: str) -> Any:
        return dict(self.defaults).get(command, self.default)

    @property
    def flag(self) -> str:
        return self.flag_name or "--" + self.name.replace("_", "-")

    def value_of(self, config: StudyConfig) -> Any:
        holder = config if self.group is None else getattr(config, self.group)
        value = getattr(holder, self.name)
        return list(value) if isinstance(value, tuple) else value

    def check(self, value: Any, where: str) -> Any:
        if value is None and self.optional:
            return None
        if self.kind is tuple:
            if not isinstance(value, (list, tuple)) or not value:
                raise UserError(f"{where}: {self.name} must be a non-empty list, got {value!r}")
            return tuple(self._check_one(v, self.item, where) for v in value)
        return self._check_one(value, self.kind, where)

    def _check_one(self, value: Any, kind: type, where: str) -> Any:
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
            raise UserError(f"{where}: {self.name} must be {_kind_name(kind)}, got {value!r}")
        if kind is float and not math.isfinite(value):
            raise UserError(f"{where}: {self.name} must be finite, got {value!r}")
        if self.positive and not value > 0:
            raise UserError(f"{where}: {self.name} must be > 0, got {value!r}")
        if self.low is not None and value < self.low:
            raise UserError(f"{where}: {self.name} must be >= {_num(self.low)}, got {value!r}")
        if self.high is not None and value >= self.high:
            raise UserError(f"{where}: {self.name} must be < {_num(self.high)}, got {value!r}")
        if self.at_most is not None and value > self.at_most:
            raise UserError(f"{where}: {self.name} must be <= {_num(self.at_most)}, got {_shown(value)}")
        if self.choices and value not in self.choices:
            raise UserError(f"{where}: unknown {self.name} {value!r}; allowed: {', '.join(map(str, self.choices))}")
        if self.pattern and not re.fullmatch(self.pattern, value):
            raise UserError(f"{where}: {self.name} {value!r} is not valid")
        return value

    def parse(self, text: str | list[str]) -> Any:
        """CLI text to the field's type (range checks come after, in ``check``); tuples take 1 2 3 or 1,2,3."""
        if self.kind is tuple:
            words = [w for part in ([text] if isinstance(text, str) else text) for w in part.split(",") if w]
            return tuple(self._parse_one(w, self.item) for w in words)
        return self._parse_one(text, self.kind)

    def _parse_one(self, text: str | bool, kind: type) -> Any:
        if kind is str or kind is bool:  # argparse gives a bool flag (--compile / --no-compile) its value
            return text
        try:
            return _parse_int(text) if kind is int else float(text)
        except (ValueError, OverflowError):
            raise UserError(f"argument {self.flag}: expected {_kind_name(kind)}, got {text!r}") from None


def _fields_of(cls: type, group: str | None) -> list[Field]:
    out = []
    for f, hint in declared(cls):
        meta = f.metadata
        kind, item = _kind_of(hint)
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        out.append(Field(name=f.name, kind=kind, item=item, default=default, help=meta["help"], group=group,
                         commands=meta["commands"] or TRAINING_COMMANDS, low=meta["low"], high=meta["high"],
                         at_most=meta["at_most"],
                         positive=meta["positive"], optional=meta["optional"], choices=meta["choices"],
                         pattern=meta["pattern"], flag_name=meta["flag"], defaults=tuple(meta["defaults"].items())))
    return out


def _kind_of(hint: Any) -> tuple[type, type | None]:
    """int | None -> (int, None); tuple[float, ...] -> (tuple, float)."""
    args = [a for a in getattr(hint, "__args__", ()) if a is not type(None)]
    origin = getattr(hint, "__origin__", None)
    if origin is tuple:
        return tuple, args[0]
    if args and origin is not tuple:  # Optional[X]
        return _kind_of(args[0])
    return hint, None


GROUPS: dict[str, type] = {"train": TrainSettings, "execution": ExecutorSettings, "scale": ScaleSettings,
                           "run": RunSettings}  # StudyConfig's attribute -> the settings class it holds
FIELDS: tuple[Field, ...] = (*_fields_of(StudyConfig, None),
                             *(f for group, cls in GROUPS.items() for f in _fields_of(cls, group)))
FIELD_BY_NAME = {f.name: f for f in FIELDS}
assert len(FIELD_BY_NAME) == len(FIELDS), "two settings share a name"


def command_fields(command: str) -> tuple[Field, ...]:
    return tuple(f for f in FIELDS if command in f.commands)


_SUFFIXES = {"k": 10**3, "m": 10**6, "g": 10**9}


def _parse_int(text: str) -> int:
    """Integers, also as 4e8 or with a K / M / G suffix (400M)."""
    text = text.strip()
    multiplier = _SUFFIXES.get(text[-1:].lower(), 1) if text else 1
    number = float(text[:-1] if multiplier > 1 else text) if not re.fullmatch(r"[+-]?\d+", text) else int(text)
    if isinstance(number, float):
        number *= multiplier
        if not number.is_integer():
            raise ValueError(text)
    return int(number)


def _kind_name(kind: type) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}[kind]


def _shown(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, (int, float)) and abs(value) >= 1e12 else repr(value)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


EXPORT_FORMATS = ("onnx", "pt2", "timm")  # effnas export --format

STUDY_FILE_LIMIT = 1 << 20  # bytes: a study file is a page of settings


def read_toml(path: str | Path) -> dict[str, Any]:
    data = read_bounded(path, limit=STUDY_FILE_LIMIT, what="config file")
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise UserError(f"config file {str(path)!r} is not UTF-8 text: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"config file {str(path)!r} is not valid TOML: {exc}") from None


def load_config(*, file: str | Path | None = None, overrides: dict[str, Any] | None = None,
                command: str = "search") -> StudyConfig:
    """Defaults, then the study file, then ``overrides`` (CLI flags that were given)."""
    values = {f.name: f.default_for(command) for f in FIELDS}
    space: dict[str, Any] = {}
    data: dict[str, Any] = {}
    if file is not None:
        where = f"config file {str(file)!r}"
        data = read_toml(file)
        unknown = set(data) - set(FIELD_BY_NAME) - {"space"}
        if unknown:
            raise UserError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; allowed: "
                            f"{', '.join(FIELD_BY_NAME)}, [space]")
        for name, value in data.items():
            if name == "space":
                if not isinstance(value, dict):
                    raise UserError(f"{where}: space must be a table, got {value!r}")
                space = value
            else:
                values[name] = FIELD_BY_NAME[name].check(value, where)
    for name, value in (overrides or {}).items():
        values[name] = FIELD_BY_NAME[name].check(value, f"argument {FIELD_BY_NAME[name].flag}")
    explicit = frozenset(overrides or {}) | frozenset(k for k in data if k != "space")
    groups: dict[str | None, dict[str, Any]] = {None: {}, **{group: {} for group in GROUPS}}
    for f in FIELDS:
        groups[f.group][f.name] = values[f.name]
    return StudyConfig(**groups.pop(None), **{group: GROUPS[group](**kw) for group, kw in groups.items()},
                       space=space, command=command, explicit=explicit)


def with_dims(config: StudyConfig, *, dims: int) -> StudyConfig:
    """``config`` for a study of ``dims`` spatial dimensions: the defaults of :data:`DIMS_DEFAULTS` replace the
    keys of its command that neither the study file nor a flag set."""
    table = DIMS_DEFAULTS[dims]
    fields = [FIELD_BY_NAME[name] for name in table if name in FIELD_BY_NAME]
    defaults = {f.name: table[f.name] for f in fields if f.name not in config.explicit and config.command in f.commands}
    groups: dict[str | None, dict[str, Any]] = {None: {}, **{group: {} for group in GROUPS}}
    for name, value in defaults.items():
        groups[FIELD_BY_NAME[name].group][name] = value
    space = {**table.get("space", {}), **config.space} if config.command in SEARCH else config.space
    own = groups.pop(None)
    changed = {group: dataclasses.replace(getattr(config, group), **kw) for group, kw in groups.items()}
    return dataclasses.replace(config, dims=dims, space=space, **own, **changed)


def space_options(space: Mapping[str, Any]) -> tuple[dict[str, Any], dict[int, dict[str, Any]]]:
    """Split the [space] table into choices for every stage and per-stage overrides ([space.stages.N])."""
    overrides = {k: v for k, v in space.items() if k != "stages"}
    stages = space.get("stages", {})
    if not isinstance(stages, dict):
        raise UserError(f"config: space.stages must be a table of stage numbers, got {stages!r}")
    per_stage = {}
    for key, value in stages.items():
        if not re.fullmatch(r"\d+", str(key)) or not isinstance(value, dict):
            raise UserError(f"config: space.stages.{key} must be a table under a stage number")
        per_stage[int(key)] = value
    return overrides, per_stage
