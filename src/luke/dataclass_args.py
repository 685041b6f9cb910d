"""Command-line flags derived from dataclass fields, and dataclass instances from plain mappings.

A field becomes a flag when it is declared with :func:`option` (which records its help text); fields
declared with a plain default are settings of the API only.  The derivation is argparse's ordinary
vocabulary, so a parser built this way reads exactly like a hand-written one:

* name ``max_seq_length`` -> ``--max-seq-length`` (``flag=`` overrides it, e.g. ``--no-tensorboard``);
* type ``int``/``float``/``Path`` -> ``type=``; ``X | None`` -> ``X``; ``Literal[...]`` -> ``choices=``;
* ``bool`` defaulting to False -> ``store_true``; defaulting to True -> ``store_false`` under a ``--no-``
  flag; a field without a default -> ``required=True``;
* ``unset=True`` (the value comes from elsewhere when the flag is absent, e.g. a task's paper default)
  makes the argparse default None; a True-defaulting bool then becomes ``--x/--no-x``.

A subclass may re-declare a field only to change its default: help, flag and group are looked up along
the class's MRO, so they stay declared once.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from luke.errors import ConfigError

__all__ = [
    "option",
    "flag_fields",
    "field_meta",
    "flag_name",
    "add_arguments",
    "from_mapping",
    "values_from_namespace",
    "check_value",
    "check_values",
]

_MISSING = dataclasses.MISSING


def option(
    default: Any = _MISSING,
    help: str = "",
    *,
    group: str = "",
    flag: str | None = None,
    at_least: float | None = None,
    at_most: float | None = None,
    above: float | None = None,
    below: float | None = None,
    **kwargs: Any,
) -> Any:
    """A dataclass field that is also a command-line flag (``help`` and argparse ``group`` recorded).

    ``at_least``/``at_most`` (inclusive) and ``above``/``below`` (exclusive) bound its value; they are
    checked by :func:`check_values` (a ``float`` field must also be finite)."""
    bounds = {"at_least": at_least, "at_most": at_most, "above": above, "below": below}
    metadata = {"help": help, "group": group, "flag": flag, "bounds": bounds}
    if default is _MISSING:
        return dataclasses.field(metadata=metadata, **kwargs)
    return dataclasses.field(default=default, metadata=metadata, **kwargs)


def field_meta(cls: type, name: str) -> Mapping[str, Any]:
    """The :func:`option` metadata of field ``name``: from the first class along the MRO that declares it
    with :func:`option` (empty when none does)."""
    for klass in cls.__mro__:
        f = getattr(klass, "__dataclass_fields__", {}).get(name)
        if f is not None and "help" in f.metadata:
            return f.metadata
    return {}


def flag_name(cls: type, name: str) -> str:
    """The command-line flag of field ``name`` (``--max-seq-length``)."""
    return field_meta(cls, name).get("flag") or "--" + name.replace("_", "-")


def _num(x: float) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


def _describe(bounds: Mapping[str, float | None]) -> str:
    low, high = bounds.get("at_least"), bounds.get("at_most")
    above, below = bounds.get("above"), bounds.get("below")
    if low is not None and high is not None:
        return f"between {_num(low)} and {_num(high)}"
    parts = []
    if low is not None:
        parts.append(f"at least {_num(low)}")
    if above is not None:
        parts.append(f"above {_num(above)}")
    if high is not None:
        parts.append(f"at most {_num(high)}")
    if below is not None:
        parts.append(f"below {_num(below)}")
    return " and ".join(parts)


def _in_bounds(value: float, bounds: Mapping[str, float | None]) -> bool:
    low, high = bounds.get("at_least"), bounds.get("at_most")
    above, below = bounds.get("above"), bounds.get("below")
    return (
        (low is None or value >= low)
        and (high is None or value <= high)
        and (above is None or value > above)
        and (below is None or value < below)
    )


def check_value(cls: type, name: str, value: Any) -> None:
    """:class:`ConfigError` when ``value`` cannot be flag field ``name`` of dataclass ``cls``: not of its type
    (an integer for ``int``, a finite number for ``float``) or outside the bounds declared with :func:`option`.
    The message names the flag: ``--train-batch-size must be at least 1, got 0``."""
    meta = field_meta(cls, name)
    if not meta or value is None:
        return
    kind, _ = _flag_type(typing.get_type_hints(cls)[name])
    flag = flag_name(cls, name)
    bounds = meta.get("bounds") or {}
    has_bounds = any(v is not None for v in bounds.values())
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{flag} must be an integer, got {value!r}")
    elif kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            within = f" {_describe(bounds)}" if has_bounds else ""
            raise ConfigError(f"{flag} must be a finite number{within}, got {value!r}")
    else:
        return
    if has_bounds and not _in_bounds(value, bounds):
        raise ConfigError(f"{flag} must be {_describe(bounds)}, got {value!r}")


def check_values(obj: Any) -> None:
    """:func:`check_value` of every flag field of dataclass instance ``obj`` (the first bad one raises)."""
    for f in dataclasses.fields(obj):
        check_value(type(obj), f.name, getattr(obj, f.name))


def flag_fields(cls: type, group: str | None = None) -> list[dataclasses.Field]:
    """The fields of ``cls`` that are flags (in declaration order), optionally only those of ``group``."""
    return [
        f
        for f in dataclasses.fields(cls)
        if field_meta(cls, f.name) and (group is None or field_meta(cls, f.name)["group"] == group)
    ]


def _flag_type(hint: Any) -> tuple[Any, tuple[Any, ...] | None]:
    """(base type, choices) of a type hint: ``X | None`` -> X; ``Literal[a, b]`` -> (type(a), (a, b))."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        hint = args[0] if len(args) == 1 else hint
    if typing.get_origin(hint) is Literal:
        choices = typing.get_args(hint)
        return type(choices[0]), choices
    return hint, None


def _default(f: dataclasses.Field) -> Any:
    if f.default is not _MISSING:
        return f.default
    if f.default_factory is not _MISSING:
        return f.default_factory()
    return _MISSING


def add_arguments(
    container: Any,
    cls: type,
    fields: Iterable[dataclasses.Field] | None = None,
    *,
    unset: bool = False,
    help_suffix: Callable[[str], str] | None = None,
) -> None:
    """Add a flag for each of ``fields`` (default: all flag fields of ``cls``) to ``container`` (a parser or
    an argument group); the parsed value lands under the field's name.  See the module docstring."""
    hints = typing.get_type_hints(cls)
    for f in flag_fields(cls) if fields is None else fields:
        meta = field_meta(cls, f.name)
        kind, choices = _flag_type(hints[f.name])
        default = _default(f)
        text = meta["help"] + (help_suffix(f.name) if help_suffix else "")
        kw: dict[str, Any] = {"dest": f.name, "help": text or None}
        if kind is bool:
            if unset and default is True:
                kw.update(action=argparse.BooleanOptionalAction, default=None)
            else:
                kw.update(action="store_false" if default is True else "store_true")
                kw["default"] = None if unset else default
        else:
            kw.update(default=None if unset or default is _MISSING else default, choices=choices)
            kw.update(type=None if kind is str else kind, required=default is _MISSING)
        container.add_argument(flag_name(cls, f.name), **kw)


def values_from_namespace(
    namespace: argparse.Namespace, fields: Iterable[dataclasses.Field], *, skip_none: bool = True
) -> dict[str, Any]:
    """``{field name: parsed value}`` for ``fields`` (values left None by argparse are skipped)."""
    values = {f.name: getattr(namespace, f.name) for f in fields}
    return {k: v for k, v in values.items() if v is not None or not skip_none}


def _coerce(name: str, hint: Any, value: Any, where: str) -> Any:
    kind, choices = _flag_type(hint)
    if value is None:
        return None
    if choices is not None:
        if value not in choices:
            raise ConfigError(f"{where}: {name} must be one of {', '.join(map(str, choices))}, got {value!r}")
        return value
    if kind is bool:  # bool("false") is True: only real booleans
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: {name} must be true or false, got {value!r}")
        return value
    if kind in (int, float, Path, str):
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise ConfigError(f"{where}: {name} must be an integer, got {value!r}")
        try:
            return kind(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: {name} must be {kind.__name__}, got {value!r}") from None
    return value


def from_mapping(cls: type, values: Mapping[str, Any], where: str) -> Any:
    """An instance of dataclass ``cls`` from ``values`` (missing keys take their defaults; values are
    converted to the field types).  Unknown keys and unusable values raise :class:`ConfigError` naming
    ``where`` (a file, or what the values are for) and the key."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    for key in values:
        if key not in names:
            raise ConfigError(f"{where}: unknown option {key!r} (known: {', '.join(names)})")
    coerced = {k: _coerce(k, hints[k], v, where) for k, v in values.items()}
    try:
        return cls(**coerced)
    except ConfigError as err:  # a value out of range (checked by the class): say where it came from
        raise ConfigError(f"{where}: {err}") from None
