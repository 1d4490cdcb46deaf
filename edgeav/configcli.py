"""CLI commands generated from config dataclasses (litgpt style): every field is an option, its default is the
field's default and its help is the field's docstring (the string literal under it), so each default and each
description exists once, in the dataclass."""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import json
import textwrap
import types
import typing
from collections.abc import Callable
from typing import Any

import typer


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """{field: docstring} of a dataclass: the string literal right under each field, read from its source."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body
    docs = {}
    for node, nxt in zip(body, body[1:]):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
            and isinstance(nxt.value.value, str)
        ):
            docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def _cli_type(t: Any) -> tuple[Any, Callable[[Any], Any]]:
    """(the type typer parses, a converter back to the field's type) for a field annotation."""
    origin, args = typing.get_origin(t), typing.get_args(t)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        inner = next(a for a in args if a is not type(None))
        cli, conv = _cli_type(inner)
        return cli | None, lambda v: None if v is None else conv(v)
    if origin is tuple:  # tuple[X, ...]: a repeatable option
        item = args[0]
        return list[item], tuple
    if t is dict or origin is dict:
        return str, lambda v: json.loads(v) if isinstance(v, str) else v
    return t, lambda v: v


def _cli_default(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, dict):
        return json.dumps(value)
    return value


def config_command(
    cls: type,
    run: Callable[[Any], Any],
    *,
    doc: str,
    arguments: tuple[str, ...] = (),
    short: dict[str, str] | None = None,
    hidden: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
) -> Callable[..., Any]:
    """A typer command whose parameters are the fields of `cls` (`arguments` positional, the rest options; `short`
    adds short flags, `hidden` hides options from --help, `exclude` leaves fields at their defaults). Invoked, it
    builds `cls` from the command line and calls `run` with it."""
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    short = short or {}
    params, convert = [], {}
    for f in dataclasses.fields(cls):
        if f.name in exclude:
            continue
        cli_t, convert[f.name] = _cli_type(hints[f.name])
        if f.default is not dataclasses.MISSING:
            default = _cli_default(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            default = _cli_default(f.default_factory())
        else:
            default = ...
        help_ = docs.get(f.name, "")
        if f.name in arguments:
            info = typer.Argument(default, help=help_, show_default=default not in (None, ...))
        else:
            names = [f"--{f.name.replace('_', '-')}", *([short[f.name]] if f.name in short else [])]
            info = typer.Option(default, *names, help=help_, hidden=f.name in hidden)
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=cli_t))

    def command(**values: Any) -> Any:
        return run(cls(**{k: convert[k](v) for k, v in values.items()}))

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__doc__ = doc
    return command
