"""Launch commands a worker allows: named entrypoints with typed, bounded parameters.

A message never carries a command.  The worker's operator lists entrypoints in
a TOML file (``$TRAINMQ_ENTRYPOINTS``); a ``TrainRequest`` names one and fills
in its parameters::

    [entrypoints.tiny-loop]
    command = ["python", "examples/tiny_loop.py", "--lr", "{lr}"]
    grace_seconds = 30          # after SIGTERM, before SIGKILL of the group

    [entrypoints.tiny-loop.params.lr]
    type = "float"              # int, float, bool or str
    min = 1e-5
    max = 1.0
    default = 1e-3              # no default: the request must give it

    [entrypoints.tiny-loop.params.mode]
    type = "str"
    choices = ["fast", "exact"] # a str parameter must list its choices

The command is an argument list run without a shell; ``{name}`` inside an
argument is replaced by the parameter's value.  An unknown entrypoint, an
unknown parameter, a value of the wrong type or outside its bounds is a
``PermanentFailure`` naming what is wrong: the message can never succeed.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from ..errors import ConfigurationError, PermanentFailure

__all__ = ["ENTRYPOINTS_ENV", "Entrypoint", "Entrypoints", "Param"]

#: The environment variable naming the worker's entrypoints file.
ENTRYPOINTS_ENV = "TRAINMQ_ENTRYPOINTS"

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
_PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]*)\}")
_TYPES: dict[str, type] = {"int": int, "float": float, "bool": bool, "str": str}

Value = int | float | bool | str


@dataclass(frozen=True)
class Param:
    """One parameter: its type and bounds (numbers) or choices (strings)."""

    name: str
    type: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    default: Value | None = None

    def check(self, value: Any, where: str) -> Value:
        """``value`` if it is of this parameter's type and within its bounds."""
        kind = _TYPES[self.type]
        if self.type == "float" and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise PermanentFailure(f"{where}: parameter {self.name!r} must be {self.type}")
        if isinstance(value, float) and not math.isfinite(value):
            raise PermanentFailure(f"{where}: parameter {self.name!r} must be finite")
        if isinstance(value, int | float) and not isinstance(value, bool):
            if self.min is not None and value < self.min:
                raise PermanentFailure(
                    f"{where}: parameter {self.name!r} = {value} is below its minimum {self.min}"
                )
            if self.max is not None and value > self.max:
                raise PermanentFailure(
                    f"{where}: parameter {self.name!r} = {value} is above its maximum {self.max}"
                )
        if isinstance(value, str) and value not in self.choices:
            raise PermanentFailure(
                f"{where}: parameter {self.name!r} = {value!r} is not one of {list(self.choices)}"
            )
        return cast(Value, value)


@dataclass(frozen=True)
class Entrypoint:
    name: str
    command: tuple[str, ...]
    params: dict[str, Param] = field(default_factory=dict)
    grace_seconds: float = 30.0

    def argv(self, given: dict[str, Any]) -> tuple[list[str], dict[str, Value]]:
        """The command with the parameters filled in, and the parameters' values."""
        where = f"entrypoint {self.name!r}"
        unknown = sorted(set(given) - set(self.params))
        if unknown:
            raise PermanentFailure(
                f"{where} has no parameter {', '.join(map(repr, unknown))} "
                f"(it takes {sorted(self.params) or 'none'})"
            )
        values: dict[str, Value] = {}
        for name, param in self.params.items():
            if name in given:
                values[name] = param.check(given[name], where)
            elif param.default is not None:
                values[name] = param.default
            else:
                raise PermanentFailure(f"{where}: parameter {name!r} is required")
        argv = [_PLACEHOLDER.sub(lambda m: _text(values[m.group(1)]), arg) for arg in self.command]
        return argv, values


def _text(value: Value) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _param(entry: str, name: str, spec: dict[str, Any]) -> Param:
    where = f"entrypoint {entry!r} parameter {name!r}"
    kind = spec.get("type")
    if kind not in _TYPES:
        raise ConfigurationError(f"{where}: type must be one of {sorted(_TYPES)}")
    if set(spec) - {"type", "min", "max", "choices", "default"}:
        raise ConfigurationError(f"{where}: unknown keys {sorted(set(spec) - {'type'})}")
    if kind in ("int", "float") and ("min" not in spec or "max" not in spec):
        raise ConfigurationError(f"{where}: a number parameter needs min and max")
    if kind == "str" and not spec.get("choices"):
        raise ConfigurationError(f"{where}: a str parameter needs choices")
    param = Param(
        name, kind, spec.get("min"), spec.get("max"), tuple(spec.get("choices", ())), None
    )
    default = spec.get("default")
    if default is not None:
        try:
            default = param.check(default, f"entrypoint {entry!r}")
        except PermanentFailure as exc:
            raise ConfigurationError(f"{where}: the default is invalid: {exc.reason}") from None
    return Param(param.name, kind, param.min, param.max, param.choices, default)


class Entrypoints:
    """The entrypoints a worker allows (the launch handler reads the file at each
    invocation: an edit applies from the next batch on)."""

    def __init__(self, entrypoints: dict[str, Entrypoint]) -> None:
        self.entrypoints = entrypoints

    @classmethod
    def load(cls, path: str | Path) -> Entrypoints:
        """Read and check an entrypoints file; a mistake in it is a ``ConfigurationError``."""
        try:
            data = tomllib.loads(Path(path).read_text("utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigurationError(f"cannot read the entrypoints file {path}: {exc}") from None
        found: dict[str, Entrypoint] = {}
        for name, spec in data.get("entrypoints", {}).items():
            command = spec.get("command")
            if not _NAME.match(name):
                raise ConfigurationError(f"entrypoint name {name!r} is not [a-z][a-z0-9_-]*")
            if not command or not all(isinstance(arg, str) for arg in command):
                raise ConfigurationError(f"entrypoint {name!r}: command must be a list of strings")
            params = {p: _param(name, p, s) for p, s in spec.get("params", {}).items()}
            missing = {m for arg in command for m in _PLACEHOLDER.findall(arg)} - set(params)
            if missing:
                raise ConfigurationError(f"entrypoint {name!r} uses undeclared {sorted(missing)}")
            grace = float(spec.get("grace_seconds", 30.0))
            found[name] = Entrypoint(name, tuple(command), params, grace)
        return cls(found)

    def get(self, name: str) -> Entrypoint:
        try:
            return self.entrypoints[name]
        except KeyError:
            raise PermanentFailure(
                f"entrypoint {name!r} is not allowed on this worker "
                f"(it allows {sorted(self.entrypoints) or 'none'})"
            ) from None
