"""Recipes as data: each shipped model's training, step by step, in `<name>.toml` beside this file.

A step is an `edgeav` command line with `{corpus}`, `{cache}` and `{runs}` (this recipe's run folder) filled in;
a step whose `creates` path exists is skipped, and every command resumes its own work, so an interrupted recipe
continues where it stopped when run again. Steps run one after another, each in its own process.

    edgeav train recipe student            # = python -m edgeav.cli train recipe student
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgeav.errors import EdgeavError

RECIPES = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Step:
    name: str
    """Short name, for --only."""
    command: tuple[str, ...]
    """The edgeav command line after `edgeav`, with {corpus}, {cache} and {runs} placeholders."""
    creates: str = ""
    """A path the step writes last: the step is skipped when it exists (empty: the command resumes itself)."""


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    steps: tuple[Step, ...]


def list_recipes() -> list[str]:
    return sorted(p.stem for p in RECIPES.glob("*.toml"))


def load_recipe(name: str) -> Recipe:
    path = RECIPES / f"{name}.toml"
    if not path.exists():
        raise EdgeavError(f"no recipe {name!r}", f"choose one of {', '.join(list_recipes())}")
    d = tomllib.loads(path.read_text())
    try:
        steps = tuple(Step(s["name"], tuple(s["command"]), s.get("creates", "")) for s in d["step"])
    except (KeyError, TypeError) as e:
        raise EdgeavError(f"recipe {path} is malformed ({e})", "each [[step]] needs name and command") from None
    return Recipe(name, d.get("description", ""), steps)


def run_recipe(
    recipe: Recipe,
    corpus: str | None,
    runs: str = "runs/recipes",
    cache: str = ".cache/gameplay",
    only: tuple[str, ...] = (),
    dry_run: bool = False,
    echo: Callable[[str], None] = print,
) -> None:
    """Run `recipe`'s steps in order (or just those named in `only`), skipping those whose output exists."""
    from edgeav_train.corpus import corpus_root

    unknown = set(only) - {s.name for s in recipe.steps}
    if unknown:
        raise EdgeavError(
            f"recipe {recipe.name} has no step {sorted(unknown)[0]!r}",
            f"its steps: {', '.join(s.name for s in recipe.steps)}",
        )
    values = {"corpus": str(corpus_root(corpus)), "cache": cache, "runs": str(Path(runs) / recipe.name)}
    for step in recipe.steps:
        if only and step.name not in only:
            continue
        argv = [part.format(**values) for part in step.command]
        line = "edgeav " + shlex.join(argv)
        if step.creates and Path(step.creates.format(**values)).exists():
            echo(f"[{recipe.name}] {step.name}: done ({step.creates.format(**values)} exists)")
            continue
        echo(f"[{recipe.name}] {step.name}: {line}")
        if dry_run:
            continue
        r = subprocess.run([sys.executable, "-m", "edgeav.cli", *argv], env=os.environ.copy())
        if r.returncode:
            raise EdgeavError(
                f"recipe {recipe.name}: step {step.name} failed (exit {r.returncode})",
                "fix what it printed and run the recipe again: finished steps are skipped",
            )
