"""StudyConfig: the embedded defaults, a TOML file, then CLI flags — strictly validated.

One table of fields drives the TOML reader, the CLI flags and the validation, so a key means the same
thing everywhere (``batch_size`` in TOML is ``--batch-size`` on the command line).
"""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from studies.errors import UserError

DEFAULT_STORAGE = "sqlite:///runs/effnas.db"


@dataclass(frozen=True)
class Field:
    name: str
    kind: type  # int, float or str
    default: Any
    help: str
    low: float | None = None  # inclusive
    high: float | None = None  # exclusive
    positive: bool = False  # strictly > 0
    optional: bool = False
    choices: tuple[str, ...] = ()
    pattern: str | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def check(self, value: Any, where: str) -> Any:
        if value is None and self.optional:
            return None
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, self.kind):
            raise UserError(f"{where}: {self.name} must be {_kind_name(self.kind)}, got {value!r}")
        if self.kind is float and not math.isfinite(value):
            raise UserError(f"{where}: {self.name} must be finite, got {value!r}")
        if self.positive and not value > 0:
            raise UserError(f"{where}: {self.name} must be > 0, got {value!r}")
        if self.low is not None and value < self.low:
            raise UserError(f"{where}: {self.name} must be >= {_num(self.low)}, got {value!r}")
        if self.high is not None and value >= self.high:
            raise UserError(f"{where}: {self.name} must be < {_num(self.high)}, got {value!r}")
        if self.choices and value not in self.choices:
            raise UserError(f"{where}: unknown {self.name} {value!r}; allowed: {', '.join(self.choices)}")
        if self.pattern and not re.fullmatch(self.pattern, value):
            raise UserError(f"{where}: {self.name} {value!r} is not valid")
        return value

    def parse(self, text: str) -> Any:
        """A CLI string to the field's type (range checks come after, in ``check``)."""
        if self.kind is str:
            return text
        try:
            return _parse_int(text) if self.kind is int else float(text)
        except ValueError:
            raise UserError(f"argument {self.flag}: expected {_kind_name(self.kind)}, got {text!r}") from None


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
    return {int: "an integer", float: "a number", str: "a string"}[kind]


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


FIELDS: tuple[Field, ...] = (
    Field("study", str, "effnas", "study name", pattern=r".+"),
    Field("storage", str, DEFAULT_STORAGE, "Optuna storage URL (SQLite file, PostgreSQL, journal file)"),
    Field("dataset", str, "digits", "digits, cifar10:PATH or folder:PATH"),
    Field("trials", int, 20, "the study ends holding this many complete trials", low=1),
    Field("epochs", int, 1, "training epochs per trial", low=1),
    Field("resolution", int, 32, "input resolution of every trial", low=4),
    Field("batch_size", int, 32, "training batch size", low=1),
    Field("sampler", str, "nsga2", "search strategy", choices=("nsga2", "tpe", "random", "mnas")),
    Field("max_macs", int, None, "hard MACs budget, checked before training", low=1, optional=True),
    Field("max_params", int, None, "hard parameter budget, checked before training", low=1, optional=True),
    Field("target_macs", int, None, "T of the MnasNet reward (default: the base's MACs)", low=1, optional=True),
    Field("executor", str, "local", "where trials run", choices=("local", "ray")),
    Field("seed", int, 0, "seed of the sampler, the split and the training", low=0),
    Field("base", str, "efficientnet-b0", "the architecture the space is built around (preset or arch)"),
    Field("lr", float, 3e-3, "peak learning rate (AdamW)", positive=True),
    Field("weight_decay", float, 0.05, "decoupled weight decay on weights", low=0),
    Field("label_smoothing", float, 0.1, "label smoothing", low=0, high=1),
    Field("dropout", float, 0.0, "dropout before the classifier", low=0, high=1),
    Field("drop_path", float, 0.0, "stochastic-depth rate of the last block", low=0, high=1),
    Field("val_fraction", float, 0.2, "share of the training data held out for validation", positive=True, high=1),
    Field("device", str, "auto", "auto, cpu, cuda or cuda:N", pattern=r"auto|cpu|cuda(:\d+)?"),
    Field("max_failures", int, 5, "consecutive failed trials that stop the study (and Ray's retries)", low=1),
    Field("address", str, None, "Ray cluster to join (HOST:PORT); default: a local Ray instance", optional=True,
          pattern=r"[^\s]+"),
    Field("gpus_per_trial", float, 0.0, "GPUs per Ray trial (fractional: small trials share one GPU)", low=0),
    Field("cpus_per_trial", float, 1.0, "CPUs per Ray trial", positive=True),
    Field("max_concurrent", int, None, "Ray trials at once (default: as resources allow)", low=1, optional=True),
)
FIELD_BY_NAME = {f.name: f for f in FIELDS}


@dataclass(frozen=True)
class StudyConfig:
    values: dict[str, Any]
    space: dict[str, Any] = field(default_factory=dict)
    explicit: frozenset[str] = frozenset()  # keys set by the file or a flag, not by the defaults

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    def replace(self, **changes: Any) -> StudyConfig:
        return dataclasses.replace(self, values={**self.values, **changes})

    def to_dict(self) -> dict[str, Any]:
        return {**self.values, "space": self.space}


def read_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise UserError(f"config file {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise UserError(f"config file {str(path)!r} is a directory") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"config file {str(path)!r} is not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"config file {str(path)!r} cannot be read: {exc}") from None


def load_config(*, file: str | Path | None = None, overrides: dict[str, Any] | None = None,
                fields: tuple[str, ...] | None = None) -> StudyConfig:
    """Defaults, then the TOML file, then ``overrides`` (CLI flags that were given)."""
    allowed = fields or tuple(FIELD_BY_NAME)
    values = {name: FIELD_BY_NAME[name].default for name in allowed}
    space: dict[str, Any] = {}
    if file is not None:
        where = f"config file {str(file)!r}"
        data = read_toml(file)
        unknown = set(data) - set(allowed) - {"space"}
        if unknown:
            raise UserError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; allowed: "
                            f"{', '.join(allowed)}, [space]")
        for name, value in data.items():
            if name == "space":
                if not isinstance(value, dict):
                    raise UserError(f"{where}: space must be a table, got {value!r}")
                space = value
            else:
                values[name] = FIELD_BY_NAME[name].check(value, where)
    for name, value in (overrides or {}).items():
        values[name] = FIELD_BY_NAME[name].check(value, f"argument {FIELD_BY_NAME[name].flag}")
    explicit = frozenset(overrides or {}) | frozenset(k for k in (data if file is not None else {}) if k != "space")
    return StudyConfig(values=values, space=space, explicit=explicit)


def space_options(space: dict[str, Any]) -> tuple[dict[str, Any], dict[int, dict[str, Any]]]:
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
