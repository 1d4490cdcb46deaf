"""`edgeav` command line: each subcommand parses options and calls one library function (litgpt style).
Training commands import `distill` lazily, so the runtime starts without training code."""
from __future__ import annotations

import functools
import json
from typing import Optional

import typer

from edgeav.defaults import DEFAULT_MODEL
from edgeav.errors import EdgeavError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Recommend sound effects from your own library for what is on screen.")


def friendly(fn):
    """Bad input ends in one line naming the problem and the fix, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*a, **k):
        try:
            return fn(*a, **k)
        except EdgeavError as e:
            typer.echo(f"edgeav: error: {e}", err=True)
            raise typer.Exit(2)
        except (FileNotFoundError, PermissionError, IsADirectoryError) as e:
            typer.echo(f"edgeav: error: {e.strerror}: {e.filename} — check the path", err=True)
            raise typer.Exit(2)

    return wrapper


@app.command()
@friendly
def run(source: Optional[str] = typer.Argument(None, help="Video file, camera index (0), /dev/videoN, rtsp:// or "
                                                      "http(s):// URL, file://, v4l2://, csi://. Default: the bundled clip."),
        bank: Optional[str] = typer.Option(None, help="Sound bank (.npz from `edgeav index`). Default: bundled sounds."),
        model: str = typer.Option(DEFAULT_MODEL, help="Registry name or .safetensors path."),
        backend: str = typer.Option("auto", help="auto | torch | onnx | tensorrt"),
        precision: str = typer.Option("fp32", help="fp32 | fp16 | int8 (what the backend can deliver)"),
        top_k: int = typer.Option(5, help="Sounds recommended per window."),
        search: str = typer.Option("auto", help="Bank search, exact: auto (= numpy, fastest on CPU) | numpy | faiss"),
        hop: float = typer.Option(0.5, help="Seconds between windows."),
        jsonl: Optional[str] = typer.Option(None, help="Write one JSON object per window here."),
        save: Optional[str] = typer.Option(None, help="Write the video with the recommended effects mixed in."),
        rules: Optional[str] = typer.Option(None, help="TOML house rules: deny_sounds, deny_categories, "
                                                      "allow_categories, [boost], min_repeat_s."),
        feedback: Optional[str] = typer.Option(None, help="Verdicts file (JSONL): re-ranks suggestions; in --show, "
                                                          "a / r accept / reject the top suggestion into it."),
        threshold: Optional[float] = typer.Option(None, help="Auto-foley: minimum top score (default: none when the "
                                                             "model has a calibrated foley rate, else calibrated)."),
        foley_rate: Optional[float] = typer.Option(None, help="Auto-foley: fraction of windows that get an effect, "
                                                              "where the picture changes most (default: calibrated)."),
        realtime: bool = typer.Option(False, help="Pace a file at real time (live sources always are)."),
        show: bool = typer.Option(False, help="Show the frame and its suggestions in a window (q quits; a / r "
                                                "accept / reject with --feedback)."),
        explain: Optional[str] = typer.Option(None, help="Folder: per window, an image of where the model looked."),
        quiet: bool = typer.Option(False, help="No per-window lines, only the summary."),
        threads: Optional[int] = typer.Option(None, help="CPU threads for the model."),
        max_seconds: Optional[float] = typer.Option(None, help="Stop after this much source time."),
        qdq: str = typer.Option("auto", help="An ONNX Q/DQ INT8 graph: exact (TensorRT's arithmetic) | fused (ONNX "
                                             "Runtime's int8 kernels; they saturate on CPUs without VNNI) | auto "
                                             "(exact for TensorRT's form on the CPU).")):
    """Recommend sounds every HOP seconds for SOURCE."""
    from edgeav.defaults import DEFAULT_CLIP
    from edgeav.pipeline import RunConfig, run as run_pipeline

    modes = {"auto": None, "exact": True, "fused": False}
    if qdq not in modes:
        raise EdgeavError(f"--qdq must be auto, exact or fused, not {qdq!r}", "e.g. --qdq exact")
    cfg = RunConfig(source=source or str(DEFAULT_CLIP), bank=bank, model=model, backend=backend, precision=precision,
                    top_k=top_k, search=search, hop=hop, jsonl=jsonl, save=save, rules=rules, explain=explain,
                    threshold=threshold, foley_rate=foley_rate, realtime=realtime, show=show,
                    feedback=feedback, quiet=quiet, threads=threads, max_seconds=max_seconds, exact_qdq=modes[qdq])
    def ready(backend, bank_):
        what = f"bundled clip {DEFAULT_CLIP.name}" if source is None else source
        typer.echo(f"edgeav: {what}, bank of {len(bank_)} sounds{' (bundled)' if bank is None else ''}, model {model} "
                   f"({backend.name} {backend.precision}"
                   f"{', exact Q/DQ' if getattr(backend, 'exact_qdq', False) else ''})",
                   err=True)

    res = run_pipeline(cfg, on_ready=ready)
    s = res.summary()
    lat = "  ".join(f"{k} {v['p50']:.1f}/{v['p95']:.1f}/{v['max']:.1f}" for k, v in s["latency_ms"].items())
    typer.echo(f"edgeav: {s['windows']} windows in {res.seconds:.1f} s ({s['windows_per_s']:.1f} windows/s); "
               f"latency ms p50/p95/max: {lat}; frames captured {s['source'].get('captured', 0)}, "
               f"dropped {s['source'].get('dropped', 0)}, reconnects {s['source'].get('reconnects', 0)}; "
               f"ended: {s['ended_by']}" + (f"; auto-foley: {len(res.placements)} effects → {save}" if save else ""),
               err=True)


@app.command()
@friendly
def index(sounds: list[str] = typer.Argument(..., help="Folders of sound files (searched recursively)."),
          out: str = typer.Option(..., "-o", "--out", help="Bank file to create or update (.npz)."),
          categories: Optional[str] = typer.Option(None, help="CSV of file,category (paths relative to the folder); "
                                                             "default: the parent folder name."),
          model: str = typer.Option(DEFAULT_MODEL, help="Registry name or .safetensors path (a student's bank is "
                                                    "indexed by its teacher: one bank serves both).")):
    """Embed a sound library into a bank (incremental: unchanged files are skipped)."""
    from edgeav.backends import load_backend
    from edgeav.bank import index_sounds, bank_encoder

    be = bank_encoder(load_backend(model, "torch"), warn=lambda m: typer.echo(m, err=True))
    bank, rep = index_sounds(be, sounds, out, categories, model_id=be.model_id)
    typer.echo(f"edgeav: bank {out}: {len(bank)} sounds (added {rep['added']}, unchanged {rep['kept']}, "
               f"dropped {rep['dropped']}, skipped {len(rep['skipped'])})", err=True)
    for rel, why in rep["skipped"].items():
        typer.echo(f"  skipped {rel}: {why}", err=True)


@app.command()
@friendly
def feedback(run_jsonl: str = typer.Argument(..., help="JSONL written by `edgeav run --jsonl`."),
             source: str = typer.Option(..., help="The video that run was made on."),
             store: str = typer.Option(..., help="Verdicts file to append to (created if missing)."),
             accept: list[str] = typer.Option([], help="T or T=SOUND: accept the window at T s (default: its top sound)."),
             reject: list[str] = typer.Option([], help="T or T=SOUND: reject it."),
             model: str = typer.Option(DEFAULT_MODEL, help="The model the run used (its embeddings key the verdicts).")):
    """Record verdicts on a run's suggestions (also lines of the JSONL marked "verdict": "accept" | "reject")."""
    from edgeav.feedback import record_run_verdicts

    vs = record_run_verdicts(run_jsonl, source, model, store, accept, reject)
    n_acc = sum(v.verdict == "accept" for v in vs)
    typer.echo(f"edgeav: {len(vs)} verdicts ({n_acc} accepted, {len(vs) - n_acc} rejected) appended to {store}", err=True)


@app.command()
@friendly
def cache(footage: str = typer.Argument(..., help="Folder of videos: the gameplay corpus, VGG-Sound, or your own."),
          out: str = typer.Option(".cache/gameplay", "-o", "--out"),
          fps: float = typer.Option(5.0), width: int = typer.Option(128), height: int = typer.Option(96),
          layout: str = typer.Option("auto", help="auto | gameplay | vggsound | folder"),
          workers: int = typer.Option(2), vggsound_csv: Optional[str] = typer.Option(None)):
    """Build the training cache (frames + log-mels) from unlabeled video; resumes when interrupted."""
    from distill.cli import build_cache_cmd

    build_cache_cmd(footage, out, fps, width, height, layout, workers, vggsound_csv)


@app.command()
@friendly
def train(cache_dir: str = typer.Option(".cache/gameplay", "--cache"),
          model: str = typer.Option("teacher"), out: str = typer.Option("runs/teacher", "-o", "--out"),
          steps: int = typer.Option(2000), clips_per_batch: int = typer.Option(16),
          windows_per_clip: int = typer.Option(8), lr: float = typer.Option(2e-3),
          temperature: float = typer.Option(0.07), w_contrastive: float = typer.Option(1.0),
          w_correspondence: float = typer.Option(1.0), w_mix: float = typer.Option(0.0),
          mix_sounds: str = typer.Option(""), seed: int = typer.Option(0)):
    """Train a teacher with the self-supervised losses (resumes from OUT/checkpoint.pt)."""
    options = dict(locals())
    from distill.cli import train_cmd

    train_cmd(**options)


@app.command("bank-distill")
@friendly
def bank_distill(model: str = typer.Option(..., help="Stage-1 model (.safetensors)."),
                 sounds: str = typer.Option(..., help="The sound library the visual side learns to point into."),
                 out: str = typer.Option("runs/bank_distill", "-o", "--out"),
                 cache_dir: str = typer.Option(".cache/gameplay", "--cache"),
                 steps: int = typer.Option(600), seed: int = typer.Option(0), lr: float = typer.Option(1e-3),
                 train: str = typer.Option("head", help="What learns: head (the attention head over a fixed trunk) "
                                                        "or visual (a student's whole visual encoder)."),
                 tune_levels: int = typer.Option(0, help="With --train head over a pretrained trunk: its last N "
                                                         "tapped levels learn too (1 = Lite0's stride-32 stage)."),
                 targets: str = typer.Option("soundtrack", help="soundtrack: the audio encoder's match of every "
                                             "window's soundtrack in the library; fingerprint: the windows where a "
                                             "library file is found starting in the soundtrack (footage that plays "
                                             "your library's own files, e.g. your game's)."),
                 w_nce: float = typer.Option(0.0, help="Weight of InfoNCE between each window's picture and its "
                                             "own soundtrack (keeps audio-visual correspondence)."),
                 balance: float = typer.Option(0.0, help="Draw windows ∝ (windows of their target sound)^-balance: "
                                               "1 = every library sound trains equally often, 0 = uniform.")):
    """Stage 2 (label-free): the soundtrack matched against the library teaches the visual side."""
    from distill.bank_distill import BankDistillConfig, bank_distill as run_stage2

    cfg = BankDistillConfig(model=model, sounds=sounds, out=out, cache=cache_dir, steps=steps, seed=seed, lr=lr,
                            train=train, tune_levels=tune_levels, targets=targets, w_nce=w_nce,
                            balance=balance)
    typer.echo(f"model saved: {run_stage2(cfg)}")


@app.command()
@friendly
def soup(models: list[str] = typer.Argument(..., help="Stage-2 runs (.safetensors) of one stage-1 model, several seeds."),
         out: str = typer.Option(..., "-o", "--out", help="Where to write the soup (.safetensors).")):
    """Uniform model soup: one model with the mean of the runs' weights, at one run's cost."""
    from distill.soup import soup as run_soup

    typer.echo(f"model saved: {run_soup(models, out)}")


@app.command()
@friendly
def center(model: str = typer.Argument(..., help="Trained model: registry name or .safetensors path."),
           out: str = typer.Option(..., "-o", "--out", help="Where to write the centred model (.safetensors)."),
           cache_dir: str = typer.Option(".cache/gameplay", "--cache", help="Training footage cache (edgeav cache)."),
           weights: list[float] = typer.Option([0.0, 0.25, 0.5, 0.75, 1.0], "--weight",
                                               help="Centring weights tried; the best on the val events is kept."),
           windows: int = typer.Option(4096, help="Footage windows averaged for the mean embedding.")):
    """Hubness reduction (label-free): centre the visual embeddings on the mean of the training footage."""
    from distill.center import center as run_center

    typer.echo(f"model saved: {run_center(model, out, cache_dir, weights=tuple(weights), n=windows)}")


@app.command()
@friendly
def distill(teacher: str = typer.Option("teacher", help="Frozen teacher: registry name or .safetensors path."),
            student: str = typer.Option("student", help="Student architecture (registry name)."),
            sounds: str = typer.Option(..., help="Sound library: its windows and mixes teach the audio side."),
            out: str = typer.Option("runs/student", "-o", "--out"),
            cache_dir: str = typer.Option(".cache/gameplay", "--cache"),
            steps: int = typer.Option(4000), batch: int = typer.Option(128), lr: float = typer.Option(3e-3),
            w_align: float = typer.Option(1.0), w_relational: float = typer.Option(1.0),
            w_bank: float = typer.Option(1.0), w_nce: float = typer.Option(0.2), seed: int = typer.Option(0)):
    """Distill a small student into the teacher's space (teacher outputs cached once; resumes from OUT)."""
    from distill.student import DistillConfig, distill as run_distill

    cfg = DistillConfig(teacher=teacher, student=student, sounds=sounds, out=out, cache=cache_dir, steps=steps,
                        batch=batch, lr=lr, w_align=w_align, w_relational=w_relational, w_bank=w_bank, w_nce=w_nce,
                        seed=seed)
    typer.echo(f"model saved: {run_distill(cfg)}")


@app.command()
@friendly
def adapt(footage: str = typer.Argument(..., help="Folder of your videos (unlabeled; a few minutes is enough)."),
          sounds: str = typer.Option(..., help="Your sound library."),
          model: str = typer.Option(DEFAULT_MODEL, help="Model to adapt: registry name or .safetensors path."),
          out: str = typer.Option("runs/adapted", "-o", "--out"),
          steps: int = typer.Option(300, help="Adaptation steps (batch 256)."),
          feedback: str = typer.Option("", help="Your verdicts file: re-embedded for the adapted model."),
          seed: int = typer.Option(0)):
    """Adapt a model to your footage and library (label-free), and carry your feedback over to it."""
    from distill.adapt import adapt_cmd

    adapt_cmd(footage=footage, sounds=sounds, model=model, out=out, steps=steps, feedback=feedback, seed=seed)


@app.command("eval")
@friendly
def eval_(model: str = typer.Option("teacher"), out: Optional[str] = typer.Option(None, help="Write results JSON."),
          corpus: Optional[str] = typer.Option(None, help="Corpus root (default ../shared/data/gameplay)."),
          bank_model: Optional[str] = typer.Option(None, help="Embed the bank with this model's audio encoder "
                                                              "(e.g. a student's visual against the teacher's bank).")):
    """Correlation, recommendation and retrieval accuracy on the corpus test split, beside chance and the prior."""
    from distill.cli import eval_cmd

    eval_cmd(model, out, corpus, bank_model)


@app.command()
@friendly
def export(model: str = typer.Argument(DEFAULT_MODEL, help="Registry name or .safetensors path."),
           format: str = typer.Option("onnx", "--format", "-f", help="onnx (fp32) | int8 (Q/DQ, TensorRT form) | "
                                                                    "int8-cpu (ONNX Runtime's fast CPU form) | "
                                                                    "fp16 | engine (TensorRT, from an int8/fp16 export)"),
           out: str = typer.Option("exports/model", "-o", "--out", help="Output path stem."),
           calib_video: list[str] = typer.Option([], help="Videos for INT8 calibration (default: the bundled clip)."),
           calib_windows: int = typer.Option(256, help="How many real windows calibrate INT8."),
           int8_float_convs: int = typer.Option(1, help="INT8: leading visual convs kept in float (mixed precision; "
                                                        "5 = a mobile student's first stage)."),
           engine_from: str = typer.Option("int8", help="For --format engine: build from the int8 or fp16 graph.")):
    """Export the encoders (ONNX opset 17, dynamic batch, sidecar JSON); parity with PyTorch is printed."""
    from edgeav.export.formats import export as do_export

    rep = do_export(model, format, out, calib_video or None, calib_windows, engine_from, int8_float_convs)
    typer.echo(json.dumps(rep, indent=1))


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@friendly
def bench(ctx: typer.Context):
    """Regenerate every benchmark result, table and plot (options: python -m benchmarks.run_all --help)."""
    from benchmarks.run_all import main

    main(ctx.args)


@app.command("models")
def models_():
    """List registered model names and which have shipped weights."""
    from edgeav.models import list_models
    from edgeav.models.store import ASSET_MODELS

    for n in list_models():
        typer.echo(f"{n}{'  (shipped)' if (ASSET_MODELS / f'{n}.safetensors').exists() else ''}")


if __name__ == "__main__":
    app()
