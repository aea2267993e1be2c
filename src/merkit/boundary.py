"""One validated boundary: the value types of configs, command-line options and API arguments, checked once, where
they enter, by pydantic, with one kind of error.

Config dataclasses (:class:`merkit.config.RunConfig` and its sections, :class:`merkit.face.clip.FaceConfig`,
:class:`merkit.motion.stage.MotionConfig`, :class:`merkit.motion.spotting.SpotConfig`) stay plain stdlib
dataclasses. Their fields carry the rules as ``typing.Annotated`` metadata (the aliases below: :data:`Count`,
:data:`PositiveFloat`, ..., and ``Literal`` choices), and :data:`FIELDS` (``extra="forbid"``) is their pydantic
config, so that :func:`validate` builds one from nested dicts (YAML) and refuses:

* unknown keys, with a "did you mean" from :func:`difflib.get_close_matches`;
* a boolean for a number and a number for a boolean; a float (``2.0``) or a string (``"2"``) for an integer;
* NaN and infinities for every float field; YAML 1.1's ``1e-3`` (a string) is accepted for a float;
* values outside their range (``training.lr > 0``, counts >= 1, ...) or their choices (with a "did you mean").

:func:`validate` and :func:`check` turn pydantic's ``ValidationError`` into one :class:`~merkit.errors.ConfigError`
line naming the key, the value and the rule (:func:`one_line`).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re
import types
import typing
from typing import Annotated, Any

import pydantic
from pydantic import BeforeValidator, ConfigDict, Field, Strict
from pydantic_core import PydanticCustomError
from typing_extensions import is_typeddict

from merkit.errors import ConfigError

#: The pydantic config of every config dataclass: unknown keys are errors.
FIELDS = ConfigDict(extra="forbid")


def _float_in(value: Any) -> Any:
    """A number, or YAML 1.1's ``1e-3`` (a string); never a boolean."""
    if isinstance(value, bool):
        raise PydanticCustomError("float_type", "must be float")
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise PydanticCustomError("float_type", "must be float") from None
    return value


def _int_in(value: Any) -> Any:
    """An integer (numpy's too); never a boolean, a float or a string."""
    if isinstance(value, (bool, float, str)):
        raise PydanticCustomError("int_type", "must be int")
    return value


#: An integer (``2.0``, ``"2"`` and ``True`` are refused).
Int = Annotated[int, BeforeValidator(_int_in)]
#: A count: an integer >= 1.
Count = Annotated[Int, Field(ge=1)]
#: An integer >= 0.
NonNegativeInt = Annotated[Int, Field(ge=0)]
#: A finite float (an integer or YAML's ``"1e-3"`` is converted; a boolean, NaN and infinities are refused).
Float = Annotated[float, BeforeValidator(_float_in), Field(allow_inf_nan=False)]
#: A finite float > 0.
PositiveFloat = Annotated[Float, Field(gt=0)]
#: A finite float >= 0.
NonNegativeFloat = Annotated[Float, Field(ge=0)]
#: A finite float in [0, 1].
Fraction = Annotated[Float, Field(ge=0, le=1)]
#: ``true`` or ``false`` only.
Bool = Annotated[bool, Strict()]


def _name_in(value: Any) -> Any:
    """A non-empty string, stripped; never a number (YAML reads the SAMM subject ``006`` as the integer 6 and
    ``011`` as 9, so a name that looks like a number must be quoted)."""
    if not isinstance(value, str):
        raise PydanticCustomError("name_type", "must be a string (quote names that YAML reads as numbers: "
                                               "'006', not 006)")
    if not value.strip():
        raise PydanticCustomError("name_empty", "must not be empty")
    return value.strip()


#: A name of something in the data (a subject, a dataset): a non-empty string, stripped; numbers are refused.
Name = Annotated[str, BeforeValidator(_name_in)]


def close_names(value: Any, choices: typing.Iterable[Any], n: int = 3) -> list[str]:
    """Up to ``n`` of ``choices`` whose similarity to ``value`` is at least 0.6 (:class:`difflib.SequenceMatcher`'s
    ratio, ignoring case, as :func:`difflib.get_close_matches`), closest first and, among equally close ones, in
    sorted order (``sub10`` -> ``sub01, sub02, ...``, not the last names)."""
    target = str(value).lower()
    scored = sorted((-difflib.SequenceMatcher(None, target, str(c).lower()).ratio(), str(c)) for c in set(choices))
    return [c for score, c in scored if -score >= 0.6][:n]


def did_you_mean(value: Any, choices: typing.Iterable[Any]) -> str:
    """``" (did you mean 'x'?)"`` when ``value`` is close to one of ``choices`` (:func:`difflib.get_close_matches`,
    ignoring case), else ``""``."""
    lowered = {str(c).lower(): str(c) for c in choices}
    close = difflib.get_close_matches(str(value).lower(), list(lowered), n=1, cutoff=0.6)
    return f" (did you mean {lowered[close[0]]!r}?)" if close else ""


def unknown_name(what: str, value: Any, choices: typing.Iterable[Any]) -> str:
    """``"unknown model 'ststnt' (did you mean 'ststnet'?); known: [...]"``."""
    choices = sorted(choices)
    return f"unknown {what} {value!r}{did_you_mean(value, choices)}; known: {choices}"


def _unwrap(hint: Any) -> list[Any]:
    """The types a hint may hold: ``Annotated`` stripped, a union split into its members."""
    if typing.get_origin(hint) is Annotated:
        return _unwrap(typing.get_args(hint)[0])
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return [t for a in typing.get_args(hint) for t in _unwrap(a)]
    return [hint]


def _keys_at(root: Any, loc: tuple) -> list[str] | None:
    """The field names of the dataclass or TypedDict that ``loc`` (a pydantic error location) leads to."""
    hints = [root]
    for part in loc:
        found = []
        for hint in (t for h in hints for t in _unwrap(h)):
            if dataclasses.is_dataclass(hint) or is_typeddict(hint):
                field = typing.get_type_hints(hint, include_extras=True).get(part)
                found += [field] if field is not None else []
            elif typing.get_origin(hint) in (dict, list, tuple) and typing.get_args(hint):
                found.append(typing.get_args(hint)[-1] if typing.get_origin(hint) is dict else
                             typing.get_args(hint)[0])
        hints = found
    keys = [sorted(typing.get_type_hints(t)) for h in hints for t in _unwrap(h)
            if dataclasses.is_dataclass(t) or is_typeddict(t)]
    return keys[0] if keys else None


def _key(prefix: str, loc: tuple) -> str:
    text = prefix
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif isinstance(part, str) and not part.startswith(("function-", "lax-", "strict-", "is-instance[")) \
                and part not in ("str", "int", "float", "bool", "none", "constrained-float", "constrained-int"):
            text += f".{part}" if text else part
    return text


_RULES = {"int_type": "must be int", "int_parsing": "must be int", "int_from_float": "must be int",
          "float_type": "must be float", "float_parsing": "must be float", "bool_type": "must be bool",
          "bool_parsing": "must be bool", "string_type": "must be str", "list_type": "must be a list",
          "tuple_type": "must be a list", "dict_type": "must be a mapping", "dataclass_type": "must be a mapping",
          "typed_dict_type": "must be a mapping", "finite_number": "must be a finite number (not NaN or inf)",
          "missing": "is required"}


def one_line(error: pydantic.ValidationError, root: Any = None, prefix: str = "") -> str:
    """pydantic's first error as one line: the key, the rule, the value, and for an unknown key or name a "did you
    mean".

    Args:
        root: the validated type (to list the keys an unknown key's section has).
        prefix: put before every key (``"config key "``, ``"predict: "``).
    """
    e = error.errors(include_url=False)[0]
    loc, kind, ctx, value = e["loc"], e["type"], e.get("ctx") or {}, e.get("input")
    key = _key("", loc)
    if kind in ("unexpected_keyword_argument", "extra_forbidden"):
        known = _keys_at(root, loc[:-1]) if root is not None else None
        section = _key("", loc[:-1])
        where = section or "the config"
        key = f"{section}.{loc[-1]}" if section else str(loc[-1])  # as written, even a key named like a type tag
        hint = f"{did_you_mean(loc[-1], known)}; {where} has {known}" if known else ""
        return f"unknown {prefix or 'config key '}{key}{hint}"
    if kind == "literal_error":
        choices = re.findall(r"'((?:[^'\\]|\\.)*)'", str(ctx.get("expected", "")))
        return f"{prefix}{key} must be one of {tuple(choices)}, got {value!r}{did_you_mean(value, choices)}"
    if kind == "value_error" and "error" in ctx:
        return f"{prefix}{key}: {ctx['error']}"
    bounds = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
    if kind in bounds:
        limit = next(iter(ctx.values()))
        rule = f"must be {bounds[kind]} {limit}"
    elif kind in ("too_short", "too_long"):
        rule = f"must list {'at least' if kind == 'too_short' else 'at most'} " \
               f"{ctx.get('min_length', ctx.get('max_length'))} item(s)"
    else:
        rule = _RULES.get(kind, e["msg"])
    return f"{prefix}{key} {rule}" + ("" if kind == "missing" else f", got {value!r}")


@functools.lru_cache(maxsize=None)
def adapter(hint: Any) -> pydantic.TypeAdapter:
    """The (cached) pydantic adapter of a type."""
    return pydantic.TypeAdapter(hint)


def validate(hint: Any, value: Any, prefix: str = "") -> Any:
    """``value`` validated (and converted) as ``hint``.

    Raises:
        ConfigError: one line (:func:`one_line`), each key after ``prefix``.
    """
    try:
        return adapter(hint).validate_python(value)
    except pydantic.ValidationError as error:
        raise ConfigError(one_line(error, hint, prefix)) from None


def check(where: str = "", **arguments: tuple[Any, Any]) -> None:
    """Check API arguments, ``name=(type, value)``, without converting them.

    Raises:
        ConfigError: ``"WHERE: NAME must be > 0, got 0"``, the first argument that breaks its type.
    """
    for name, (hint, value) in arguments.items():
        try:
            adapter(hint).validate_python(value)
        except pydantic.ValidationError as error:
            head = f"{where + ': ' if where else ''}{name}"
            kinds = [e["type"] for e in error.errors()]
            if len(kinds) > 1 and all(k.endswith(("_type", "_parsing", "is_instance_of")) for k in kinds):
                expected = str(hint).replace("typing.", "").replace("pathlib.", "").replace("NoneType", "None")
                raise ConfigError(f"{head} must be {expected}, got {value!r}") from None
            raise ConfigError(one_line(error, hint, head)) from None


def check_fields(instance: Any) -> None:
    """Check a config dataclass built in code against its fields' rules (ranges, finiteness, choices), without
    converting its values; a dataclass built from a mapping (:func:`validate`) has been checked already, types
    included.

    Raises:
        ConfigError: ``"FaceConfig.margin must be >= 0, got -1"``.
    """
    cls = type(instance)
    hints = typing.get_type_hints(cls, include_extras=True)
    for field in dataclasses.fields(instance):
        try:
            adapter(hints[field.name]).validate_python(getattr(instance, field.name))
        except pydantic.ValidationError as error:
            if not error.errors()[0]["type"].endswith(("_type", "_parsing")):
                raise ConfigError(one_line(error, hints[field.name], f"{cls.__name__}.{field.name}")) from None
