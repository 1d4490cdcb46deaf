"""`edgeav` command line: each subcommand parses options and calls one library function (litgpt style).

User commands sit at the top (run, index, adapt, feedback, export, models); training lives under `edgeav train`
(the edgeav_train package, imported only when a training command runs) and benchmarks under `edgeav bench` (run
from a clone of the repository). Options of `run` and the training commands are generated from their config
dataclasses (edgeav.configcli), so each default and its help exist once."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgeav.backends.base import Backend
    from edgeav.bank import SoundBank

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from edgeav.adapt import AdaptConfig
from edgeav.configcli import config_command
from edgeav.defaults import DEFAULT_MODEL
from edgeav.errors import EdgeavError
from edgeav.pipeline import RunConfig
from edgeav.review import ReviewConfig

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Recommend sound effects from your own library for what is on screen.",
)
train_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    # rich markup would read "[train]" as a style tag and drop it
    help="Train, distill and evaluate models; reproduce the shipped ones (pip install 'edgeav\\[train]').",
)
bench_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Benchmarks (from a clone of the repository).")
app.add_typer(train_app, name="train")
app.add_typer(bench_app, name="bench")

# earlier top-level names of training commands, kept working (hidden): old name → `edgeav train` command
TRAIN_ALIASES = {
    "cache": "cache",
    "bank-distill": "stage2",
    "distill": "student",
    "soup": "soup",
    "center": "center",
    "eval": "eval",
}


TRAIN_NEEDS = ("scipy", "onnx", "onnxruntime")  # the [train] extra, beyond the runtime's dependencies


def friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Bad input ends in one line naming the problem and the fix, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*a: Any, **k: Any) -> Any:
        try:
            return fn(*a, **k)
        except EdgeavError as e:
            typer.echo(f"edgeav: error: {e}", err=True)
            raise typer.Exit(2) from None
        except (FileNotFoundError, PermissionError, IsADirectoryError) as e:
            typer.echo(f"edgeav: error: {e.strerror}: {e.filename} — check the path", err=True)
            raise typer.Exit(2) from None

    return wrapper


def _run(cfg: RunConfig) -> None:
    from edgeav.defaults import DEFAULT_CLIP
    from edgeav.pipeline import run as run_pipeline

    bundled = cfg.source is None

    def ready(backend: Backend, bank_: SoundBank) -> None:
        what = f"bundled clip {DEFAULT_CLIP.name}" if bundled else cfg.source
        qdq = ", exact Q/DQ" if getattr(backend, "exact_qdq", False) else ""
        typer.echo(
            f"edgeav: {what}, bank of {len(bank_)} sounds{' (bundled)' if cfg.bank is None else ''}, model "
            f"{cfg.model} ({backend.name} {backend.precision}{qdq})",
            err=True,
        )

    res = run_pipeline(cfg, on_ready=ready)
    s = res.summary()
    lat = "  ".join(f"{k} {v['p50']:.1f}/{v['p95']:.1f}/{v['max']:.1f}" for k, v in s["latency_ms"].items())
    src = s["source"]
    events = (
        f"{s['events']} events over {s['frames']} frames (event head {s['event_ms_per_frame']['p50']:.2f} ms/frame, "
        f"lines {s['event_delay_ms']['p50']:.0f} ms after their frame); "
        if s["events"] or cfg.events_only
        else ""
    )
    windows = (  # an events-only run embeds no windows: their (empty) figures would only be noise
        ""
        if cfg.events_only
        else f"{s['windows']} windows ({s['windows_per_s']:.1f} windows/s), latency ms p50/p95/max: {lat}; "
    )
    typer.echo(
        f"edgeav: {events}{windows}took {res.seconds:.1f} s; "
        f"frames captured {src.get('captured', 0)}, dropped {src.get('dropped', 0)}, "
        f"reconnects {src.get('reconnects', 0)}; ended: {s['ended_by']}"
        + (f"; auto-foley: {len(res.placements)} effects → {cfg.save}" if cfg.save else ""),
        err=True,
    )


RUN_DOC = "Suggest sounds for SOURCE at each detected event, and for a window every HOP seconds."
app.command("run")(friendly(config_command(RunConfig, _run, doc=RUN_DOC, arguments=("source",))))


@app.command()
@friendly
def index(
    sounds: list[str] = typer.Argument(..., help="Folders of sound files (searched recursively)."),
    out: str = typer.Option(..., "-o", "--out", help="Bank file to create or update (.npz)."),
    categories: str | None = typer.Option(
        None, help="CSV of file,category (paths relative to the folder); default: the parent folder name."
    ),
    model: str = typer.Option(
        DEFAULT_MODEL,
        help="Registry name or .safetensors path (a student's bank is indexed by its teacher: one bank serves both).",
    ),
) -> None:
    """Embed a sound library into a bank (incremental: unchanged files are skipped)."""
    from edgeav.backends import load_backend
    from edgeav.bank import bank_encoder, index_sounds

    be = bank_encoder(load_backend(model, "torch"), warn=lambda m: typer.echo(m, err=True))
    bank, rep = index_sounds(be, sounds, out, categories, model_id=be.model_id)
    typer.echo(
        f"edgeav: bank {out}: {len(bank)} sounds (added {rep['added']}, unchanged {rep['kept']}, "
        f"dropped {rep['dropped']}, skipped {len(rep['skipped'])})",
        err=True,
    )
    for rel, why in rep["skipped"].items():
        typer.echo(f"  skipped {rel}: {why}", err=True)
    lm = rep["landmarks"]
    typer.echo(
        f"edgeav: fingerprints {lm['path']} ({lm['hashes']} of peaks): hashed {lm['added']}, unchanged {lm['kept']}"
        + (f", {len(lm['unmatchable'])} too short or silent to match" if lm["unmatchable"] else "")
        + (" (rebuilt: it was made with other settings)" if lm["rebuilt"] else ""),
        err=True,
    )


def _adapt(cfg: AdaptConfig) -> None:
    from edgeav_train.adapt import adapt_cmd

    adapt_cmd(cfg)


app.command("adapt")(
    friendly(
        config_command(
            AdaptConfig,
            _adapt,
            doc="Adapt a model to your footage and library (label-free), and carry your feedback over to it.",
            arguments=("footage",),
            short={"out": "-o"},
        )
    )
)


@app.command()
@friendly
def feedback(
    run_jsonl: str = typer.Argument(..., help="JSONL written by `edgeav run --jsonl`."),
    source: str = typer.Option(..., help="The video that run was made on."),
    store: str = typer.Option(..., help="Verdicts file to append to (created if missing)."),
    accept: list[str] = typer.Option([], help="T or T=SOUND: accept the window at T s (default: its top sound)."),
    reject: list[str] = typer.Option([], help="T or T=SOUND: reject it."),
    model: str = typer.Option(DEFAULT_MODEL, help="The model the run used (its embeddings key the verdicts)."),
) -> None:
    """Record verdicts on a run's suggestions (also lines of the JSONL marked "verdict": "accept" | "reject")."""
    from edgeav.feedback import record_run_verdicts

    vs = record_run_verdicts(run_jsonl, source, model, store, accept, reject)
    n_acc = sum(v.verdict == "accept" for v in vs)
    typer.echo(
        f"edgeav: {len(vs)} verdicts ({n_acc} accepted, {len(vs) - n_acc} rejected) appended to {store}", err=True
    )


@app.command()
@friendly
def export(
    model: str = typer.Argument(DEFAULT_MODEL, help="Registry name or .safetensors path."),
    format: str = typer.Option(
        "onnx",
        "--format",
        "-f",
        help="onnx (fp32) | int8 (Q/DQ, TensorRT form) | int8-cpu (ONNX Runtime's fast CPU form) | fp16 | "
        "engine (TensorRT, from an int8/fp16 export)",
    ),
    out: str = typer.Option("exports/model", "-o", "--out", help="Output path stem."),
    calib_video: list[str] = typer.Option([], help="Videos for INT8 calibration (default: the bundled clip)."),
    calib_windows: int = typer.Option(256, help="How many real windows calibrate INT8."),
    int8_float_convs: int = typer.Option(
        1, help="INT8: leading visual convs kept in float (mixed precision; 5 = a mobile student's first stage)."
    ),
    engine_from: str = typer.Option("int8", help="For --format engine: build from the int8 or fp16 graph."),
) -> None:
    """Export the encoders (ONNX opset 17, dynamic batch, sidecar JSON); parity with PyTorch is printed."""
    from edgeav.export.formats import export as do_export

    rep = do_export(model, format, out, calib_video or None, calib_windows, engine_from, int8_float_convs)
    typer.echo(json.dumps(rep, indent=1))


@app.command()
@friendly
def cues(
    run_jsonl: str = typer.Argument(..., help="JSONL written by `edgeav run --jsonl`."),
    out: str = typer.Option(..., "-o", "--out", help="Cue sheet to write: .otio .edl .xml .fcpxml .aaf .csv .txt .rpp"),
    source: str = typer.Option(..., help="The video that run was made on (its frame rate sets the timecodes)."),
) -> None:
    """Write the placed suggestions of an earlier run as a cue sheet for your editor."""
    from edgeav.cues import Footage, cues_from_jsonl, write_cues

    placed = cues_from_jsonl(run_jsonl)
    path = write_cues(placed, out, Footage.probe(source))
    typer.echo(f"edgeav: {len(placed)} cues → {path}", err=True)


def _categories(csv_path: str | None) -> dict[str, str]:
    """sound id → category from a CSV with sound_id (or file) and category columns."""
    import csv

    if not csv_path:
        return {}
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    key = "sound_id" if rows and "sound_id" in rows[0] else "file"
    if rows and (key not in rows[0] or "category" not in rows[0]):
        raise EdgeavError(
            f"{csv_path} has no sound_id (or file) and category columns", "give e.g. the corpus's sounds.csv"
        )
    return {r[key]: r["category"] for r in rows}


@app.command()
@friendly
def score(
    cue_sheet: str = typer.Argument(..., help="Suggestions: a cue sheet (any `--cues` format) or a run's JSONL."),
    truth: str = typer.Option(..., help="What really plays: an event log (.json), a cue sheet, or verdicts (.jsonl)."),
    out: str = typer.Option("value-report", "-o", "--out", help="Report stem: writes STEM.json and STEM.html."),
    tolerance_ms: float = typer.Option(80.0, help="A suggestion within ± this of a true event matches it."),
    categories: str | None = typer.Option(None, help="CSV of sound_id (or file), category for the truth's sounds."),
    source: str | None = typer.Option(None, help="The video (its length counts the minutes; else the last cue)."),
    fps: float = typer.Option(25.0, help="Frame rate of EDL timecodes (an EDL does not record it)."),
) -> None:
    """Value report: matched events, precision, recall, F1, right sound and category, false alarms per minute."""
    from edgeav.cues import Footage, read_cues
    from edgeav.score import score as run_score
    from edgeav.score import write_report

    predicted = read_cues(cue_sheet, fps=fps)
    cats = {c.sound: c.category for c in predicted if c.category} | _categories(categories)
    true = read_cues(truth, cats, fps=fps)
    minutes = Footage.probe(source).duration / 60 if source else None
    rep = run_score(predicted, true, tolerance_ms, minutes)
    js, page = write_report(rep, predicted, true, out, f"edgeav value report: {Path(cue_sheet).name}")
    typer.echo(
        f"edgeav: {rep['matched']} of {rep['true_events']} events matched (±{tolerance_ms:.0f} ms); precision "
        f"{rep['precision']:.2f}, recall {rep['recall']:.2f}, F1 {rep['f1']:.2f}; right sound at matched "
        f"{rep['top1_at_matched']:.2f} (top 5 {rep['top5_at_matched']:.2f}); false alarms/min "
        f"{rep['false_alarms_per_minute']:.1f} → {js}, {page}",
        err=True,
    )


def _review(cfg: ReviewConfig) -> None:
    import importlib.util

    from edgeav.review import serve

    if not all(importlib.util.find_spec(m) for m in ("fastapi", "uvicorn")):
        raise EdgeavError("the review page needs FastAPI and uvicorn", "pip install 'edgeav[edit]'")
    serve(cfg, ready=lambda url: typer.echo(f"edgeav: reviewing {cfg.source} at {url} (Ctrl-C stops)", err=True))


app.command("review")(
    friendly(
        config_command(
            ReviewConfig,
            _review,
            doc="Review the suggestions over the video in your browser: play, swap, nudge, accept or reject, export.",
            arguments=("source",),
        )
    )
)


@app.command("models")
def models_() -> None:
    """List registered model names and which have shipped weights."""
    from edgeav.models import list_models
    from edgeav.models.store import ASSET_MODELS

    for n in list_models():
        typer.echo(f"{n}{'  (shipped)' if (ASSET_MODELS / f'{n}.safetensors').exists() else ''}")


BENCHMARKS = {
    "all": "run_all",
    "latency": "latency",
    "accuracy": "accuracy",
    "peak": "peak",
    "bank-scale": "bank_scale",
    "training": "training",
    "adapt": "adapt",
    "value": "value",
    "report": "report",
}


def _bench_command(module: str) -> Callable[..., Any]:
    def command(ctx: typer.Context) -> None:
        import importlib

        try:
            mod = importlib.import_module(f"benchmarks.{module}")
        except ModuleNotFoundError:
            raise EdgeavError(
                "benchmarks are not installed with the package",
                "run them from a clone of the repository: python -m benchmarks." + module,
            ) from None
        mod.main(ctx.args)

    command.__doc__ = f"python -m benchmarks.{module} (options: edgeav bench {module.replace('_', '-')} --help)."
    return friendly(command)


for _name, _module in BENCHMARKS.items():
    bench_app.command(
        _name, context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}
    )(_bench_command(_module))


def main(argv: list[str] | None = None) -> None:
    """The `edgeav` entry point. Training commands are registered only when asked for, so the runtime's commands
    start without the training package."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in TRAIN_ALIASES:
        argv = ["train", TRAIN_ALIASES[argv[0]], *argv[1:]]
    if argv and argv[0] == "train":
        import importlib.util

        missing = [m for m in TRAIN_NEEDS if importlib.util.find_spec(m) is None]
        if missing:
            typer.echo(f"edgeav: error: training needs {', '.join(missing)} — pip install 'edgeav[train]'", err=True)
            raise SystemExit(2)
        from edgeav_train.cli import register

        register(train_app, friendly)
    app(argv, prog_name="edgeav")


if __name__ == "__main__":
    main()
