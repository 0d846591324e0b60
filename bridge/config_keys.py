"""Strict ``dmbridge.toml`` tables, and validation errors said in the file's own terms.

Every table refuses keys it does not define: ``capacty = 4`` under ``[assignment]`` would otherwise be
dropped and the default used without a word. The error names the key by its full path and, when one is
close, the key that was probably meant::

    unknown key 'assignment.capacty' in dmbridge.toml; did you mean 'capacity'?
"""

from __future__ import annotations

import difflib
import types
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError


class TomlTable(BaseModel):
    """A table of ``dmbridge.toml``: a key it does not define is an error."""

    model_config = ConfigDict(extra="forbid")


def key_path(loc: tuple[int | str, ...]) -> str:
    """``("sla", 0, "business_hours", "thur")`` as ``sla[0].business_hours.thur``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def keys_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The keys the table at ``loc`` (under ``model``) defines; empty when ``loc`` is no table."""
    current: Any = model
    for part in loc:
        if _is_model(current):
            field = current.model_fields.get(str(part))
            if field is None:
                return []
            current = _table_type(field.annotation)
        else:  # a list index or a dict key: step into the item type
            args = get_args(current)
            current = _table_type(args[-1]) if get_origin(current) in (list, dict) and args else None
    return list(current.model_fields) if _is_model(current) else []


def explain(exc: ValidationError, model: type[BaseModel], source: str) -> str:
    """One line per problem: unknown keys first (a typo often causes the others), then the rest."""
    unknown, other = [], []
    for error in exc.errors():
        loc = tuple(error["loc"])
        if error["type"] == "extra_forbidden":
            unknown.append(unknown_key(loc, keys_at(model, loc[:-1]), source))
        else:
            where = key_path(loc)
            other.append(f"{source}: {where + ': ' if where else ''}{error['msg']}")
    return "\n".join(unknown + other)


def unknown_key(loc: tuple[int | str, ...], valid: list[str], source: str) -> str:
    text = f"unknown key {key_path(loc)!r} in {source}"
    close = difflib.get_close_matches(str(loc[-1]), valid, n=1)
    if close:
        return f"{text}; did you mean {close[0]!r}?"
    return f"{text}; the keys there are {', '.join(valid)}" if valid else text


def _is_model(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)


def _table_type(annotation: Any) -> Any:
    """``X | None`` as ``X`` (the table or container part of an optional field)."""
    if get_origin(annotation) in (Union, types.UnionType):
        for arg in get_args(annotation):
            if _is_model(arg) or get_origin(arg) in (list, dict):
                return arg
        return None
    return annotation
