"""The config's JSON schema, derived from the dataclasses in ``config.py``.

The workflow validates its config against ``workflow/schemas/config.schema.yaml`` before any
job starts; that file is this module's output, and a test keeps the two identical, so the
schema can never drift from the dataclasses that the package itself checks.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
import typing

from gspo_repro.config import Config

_SCALARS = {int: "integer", float: "number", bool: "boolean", str: "string"}


def _field_docs(cls) -> dict[str, str]:
    """Attribute docstrings: the string literal right under each annotated field."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body, docs = tree.body[0].body, {}
    for stmt, nxt in zip(body, body[1:], strict=False):
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) \
                and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant) \
                and isinstance(nxt.value.value, str):
            docs[stmt.target.id] = " ".join(nxt.value.value.split())
    return docs


def _type_schema(tp) -> dict:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp in _SCALARS:
        return {"type": _SCALARS[tp]}
    if dataclasses.is_dataclass(tp):
        return dataclass_schema(tp)
    if origin is tuple:
        return {"type": "array", "items": _type_schema(args[0])}
    if origin is dict:
        return {"type": "object", "additionalProperties": _type_schema(args[1])}
    raise TypeError(f"no JSON schema for config type {tp!r}")


def dataclass_schema(cls) -> dict:
    """A closed object schema (unknown keys refused) with a description per field."""
    hints, docs = typing.get_type_hints(cls), _field_docs(cls)
    props = {}
    for f in dataclasses.fields(cls):
        props[f.name] = _type_schema(hints[f.name])
        if f.name in docs:
            props[f.name]["description"] = docs[f.name]
    schema = {"type": "object", "properties": props, "additionalProperties": False}
    if cls.__doc__:
        schema["description"] = " ".join(cls.__doc__.split())
    return schema


def config_schema() -> dict:
    """The JSON schema (draft 2020-12) of a whole config file."""
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "gspo-repro config", **dataclass_schema(Config)}
