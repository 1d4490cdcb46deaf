"""`edgeav train ...`: the training commands, registered on the runtime's command line when one is asked for.
Each maps to one library function; the options of cache, teacher, student and stage2 are their config
dataclasses' fields (edgeav.configcli)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from edgeav.configcli import config_command
from edgeav_train.bank_distill import BankDistillConfig, bank_distill
from edgeav_train.builder import CacheJob
from edgeav_train.events import EventTrainConfig, train_events
from edgeav_train.more_footage import FootageJob, record_footage
from edgeav_train.student import DistillConfig, distill
from edgeav_train.train import TrainConfig, train


def _saved(path: Path) -> None:
    if path.name == "checkpoint.pt":
        typer.echo(f"stopped early; checkpoint {path}: run the same command again to resume")
    else:
        typer.echo(f"model saved: {path}")


def cache(job: CacheJob) -> None:
    from edgeav_train.builder import build_cache

    m = build_cache(job.footage, job.out, job.config(), job.layout, job.workers, job.vggsound_csv)
    size = sum(p.stat().st_size for p in Path(job.out, "shards").glob("*.npy"))
    typer.echo(
        f"cache {job.out}: {len(m['clips'])} clips ({m['_built']} built now in {m['_seconds']:.0f} s), "
        f"{size / 1e9:.2f} GB, {len(m['bad'])} bad"
    )
    for path, why in m["bad"].items():
        typer.echo(f"  skipped {path}: {why}")


def features(
    cache_dir: str = typer.Option(".cache/gameplay", "--cache", help="Training footage cache (edgeav train cache)."),
) -> None:
    """Frozen-trunk (EfficientNet-Lite0) maps of every cached frame, for the teacher's training and targets."""
    from edgeav_train.features import build_features

    typer.echo(f"features: {build_features(cache_dir)}")


def soup(
    models: list[str] = typer.Argument(..., help="Stage-2 runs (.safetensors) of one stage-1 model, several seeds."),
    out: str = typer.Option(..., "-o", "--out", help="Where to write the soup (.safetensors)."),
) -> None:
    """Uniform model soup: one model with the mean of the runs' weights, at one run's cost."""
    from edgeav_train.soup import soup as run_soup

    typer.echo(f"model saved: {run_soup(models, out)}")


def center(
    model: str = typer.Argument(..., help="Trained model: registry name or .safetensors path."),
    out: str = typer.Option(..., "-o", "--out", help="Where to write the centred model (.safetensors)."),
    cache_dir: str = typer.Option(".cache/gameplay", "--cache", help="Training footage cache (edgeav train cache)."),
    corpus: str | None = typer.Option(None, help="Corpus whose val events choose the weight ($EDGEAV_CORPUS)."),
    weights: list[float] = typer.Option(
        [0.0, 0.25, 0.5, 0.75, 1.0], "--weight", help="Centring weights tried; the best on the val events is kept."
    ),
    windows: int = typer.Option(4096, help="Footage windows averaged for the mean embedding."),
) -> None:
    """Hubness reduction (label-free): centre the visual embeddings on the mean of the training footage."""
    from edgeav_train.center import center as run_center

    typer.echo(f"model saved: {run_center(model, out, cache_dir, corpus, weights=tuple(weights), n=windows)}")


def eval_(
    model: str = typer.Option("teacher", help="Registry name, .safetensors path or an export (.onnx.json)."),
    out: str | None = typer.Option(None, help="Write results JSON."),
    corpus: str | None = typer.Option(None, help="Corpus root (default: $EDGEAV_CORPUS)."),
    bank_model: str | None = typer.Option(
        None, help="Embed the bank with this model's audio encoder (default: the model's teacher, else itself)."
    ),
) -> None:
    """Correlation, recommendation and retrieval accuracy on the corpus test split at oracle timing (windows at
    the true events), beside chance and the blind prior."""
    from edgeav.atomic import write_json
    from edgeav.models import load_model
    from edgeav_train.evaluate import evaluate, load_inputs
    from edgeav_train.report import format_eval

    if model.endswith((".onnx.json", ".trt.json")):  # an exported model, measured through its runtime backend
        from edgeav.backends import load_backend
        from edgeav_train.evaluate import BackendModel

        m = BackendModel(load_backend(model))  # at the precision the file holds
    else:
        m = load_model(model)
    # a student is searched against the bank its teacher indexed, as `run` does (edgeav.bank.bank_encoder)
    bank_model = bank_model or m.card.teacher
    if bank_model:
        typer.echo(f"bank indexed by {bank_model}")
    # inputs are decoded once at the teacher's 128×96 and resized for smaller students
    res = evaluate(
        m,
        load_inputs(corpus, (128, 96), m.cfg.frame_offsets),
        corpus,
        bank_model=load_model(bank_model) if bank_model else None,
    )
    typer.echo(format_eval(res))
    if out:
        write_json(out, res)


def recipe(
    name: str = typer.Argument(..., help="A recipe of edgeav_train/recipes (teacher, student, student_small, ...)."),
    corpus: str | None = typer.Option(None, help="Corpus root (default: $EDGEAV_CORPUS)."),
    runs: str = typer.Option("runs/recipes", help="Folder the recipe's runs go into (one folder per recipe)."),
    only: list[str] = typer.Option([], help="Run only these steps (by name); their inputs must exist."),
    dry_run: bool = typer.Option(False, help="Print the steps' commands, run nothing."),
) -> None:
    """Reproduce a shipped model: its recipe's steps, each skipped when its output exists (resumable)."""
    from edgeav_train.recipes import load_recipe, run_recipe

    run_recipe(load_recipe(name), corpus=corpus, runs=runs, only=tuple(only), dry_run=dry_run, echo=typer.echo)


def register(app: typer.Typer, friendly: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
    """Add the training commands to `app` (the `edgeav train` group), each behind `friendly`'s one-line errors."""

    def generated(cls: type, run: Callable[[Any], Any], doc: str, **kw: Any) -> Callable[..., Any]:
        return friendly(config_command(cls, run, doc=doc, short={"out": "-o"}, **kw))

    app.command("cache")(
        generated(
            CacheJob,
            cache,
            "Build the training cache (frames + log-mels) from unlabeled video; resumes when interrupted.",
            arguments=("footage",),
        )
    )
    app.command("teacher")(
        generated(
            TrainConfig,
            lambda c: _saved(train(c)),
            "Train a teacher with the self-supervised losses (resumes from OUT/checkpoint.pt).",
            hidden=("overrides",),
        )
    )
    app.command("student")(
        generated(
            DistillConfig,
            lambda c: _saved(distill(c)),
            "Distill a small student into the teacher's space (teacher outputs cached once; resumes from OUT).",
            hidden=("overrides",),
        )
    )
    app.command("stage2")(
        generated(
            BankDistillConfig,
            lambda c: _saved(bank_distill(c)),
            "Stage 2 (label-free): the soundtrack matched against the library teaches the visual side (resumes).",
        )
    )
    app.command("footage")(
        generated(
            FootageJob,
            record_footage,
            "Record more unlabeled footage with the corpus's recorder (new seeds; resumes when interrupted).",
        )
    )
    app.command("events")(
        generated(
            EventTrainConfig,
            lambda c: _saved(train_events(c)),
            "Train the event head (label-free: fingerprinted starts teach onset frame and sound; resumes).",
        )
    )
    app.command("soup")(friendly(soup))
    app.command("center")(friendly(center))
    app.command("eval")(friendly(eval_))
    app.command("features")(friendly(features))
    app.command("recipe")(friendly(recipe))
