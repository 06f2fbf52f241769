"""The configuration reference: one row per field of `Settings`, read from the class itself
(never from the environment), so a new setting appears by running `intervene docs generate`."""

import json
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import pydantic_core
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from models.settings import SOURCE_ROOT, Settings

BOUNDS = (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))


def env_name(name: str, field: FieldInfo, model: type[BaseModel] = Settings) -> str:
    """What pydantic-settings reads: an alias as is, else the prefix and the field's name."""
    if isinstance(field.validation_alias, str):
        return field.validation_alias.upper()
    return f"{model.model_config.get('env_prefix', '')}{name}".upper()


def type_name(annotation: Any) -> str:
    """A type as a reader writes it (`Path (optional)`), with no `|` to break a table."""
    origin = get_origin(annotation)
    if origin is Literal:
        return " or ".join(json.dumps(value) for value in get_args(annotation))
    if origin in (Union, types.UnionType):
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        named = " or ".join(type_name(arg) for arg in members)
        return f"{named} (optional)" if len(members) < len(get_args(annotation)) else named
    if origin is not None:
        return f"{origin.__name__}[{', '.join(type_name(arg) for arg in get_args(annotation))}]"
    return str(getattr(annotation, "__name__", annotation))


def bounds(field: FieldInfo) -> str:
    found = [
        f"{symbol} {getattr(meta, attr)}"
        for meta in field.metadata
        for attr, symbol in BOUNDS
        if getattr(meta, attr, None) is not None
    ]
    return ", ".join(found)


def portable(value: Any) -> str:
    """A default as text that is the same on every machine: paths inside the checkout are
    shown relative to it, never as this machine's absolute path."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, SecretStr):
        return "(secret)"
    if isinstance(value, Path):
        if value.is_absolute() and value.is_relative_to(SOURCE_ROOT):
            return f"`{value.relative_to(SOURCE_ROOT).as_posix()}` in the Intervene checkout"
        return f"`{value.as_posix()}`"
    if isinstance(value, float) and value.is_integer():
        return f"`{int(value)}`"
    if isinstance(value, list | dict):
        return f"`{json.dumps(pydantic_core.to_jsonable_python(value))}`"
    return f"`{value}`"


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_settings(model: type[BaseModel] = Settings) -> str:
    """A markdown table: variable, type, default, description, in the class's order (related
    settings sit together there, and some descriptions lean on the row above)."""
    rows = []
    for name, field in model.model_fields.items():
        if not field.description:
            raise ValueError(
                f"{model.__name__}.{name} has no description: give it Field(description=...)"
            )
        kind = type_name(field.annotation)
        if limits := bounds(field):
            kind = f"{kind}, {limits}"
        default = portable(field.get_default(call_default_factory=True))
        rows.append((env_name(name, field, model), kind, default, field.description))
    lines = ["| variable | type | default | description |", "|---|---|---|---|"]
    lines += [
        f"| `{var}` | {cell(kind)} | {cell(default)} | {cell(desc)} |"
        for var, kind, default, desc in rows
    ]
    text = "\n".join(lines) + "\n"
    assert str(SOURCE_ROOT) not in text, "a machine path leaked into the settings reference"
    return text
