"""`edgeav adapt`: fit a model to the user's own domain from a few minutes of their unlabeled footage, their sound
library and their feedback — quickly, on a CPU.

1. cache the footage (frames + log-mel, as for training) and, for a frozen-trunk model, its trunk features;
2. label-free stage 2 on that footage (edgeav_train.bank_distill): the frozen audio encoder matches each moment's
   soundtrack against the user's library, and the visual attention head learns to point there. Only the visual
   head moves: the audio side and projector stay fixed, so the user's existing bank stays valid;
3. with an event head, it is fine-tuned on the same starts at frame rate, and on the user's verdicts on this
   footage (accepted: that sound at that moment; rejected: pushed away there);
4. the user's verdicts (edgeav feedback / the live view) are re-embedded with the adapted model (their source videos
   must still exist) into OUT/feedback.jsonl, which `edgeav run --feedback` uses to re-rank.

    edgeav adapt MY_FOOTAGE --sounds MY_SOUNDS --model teacher -o runs/adapted [--feedback verdicts.jsonl]
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from edgeav.adapt import AdaptConfig
from edgeav.atomic import write_json
from edgeav.errors import EdgeavError
from edgeav.io import audio_files


def reembed_feedback(src: str, dst: Path, model_path: str) -> dict:
    """The verdicts of `src` with embeddings from `model_path`, written to `dst` (a new append-only store)."""
    from edgeav.backends import load_backend
    from edgeav.feedback import FeedbackStore, Verdict, embed_moments

    verdicts = FeedbackStore(src).load()
    be = load_backend(model_path, "torch")
    by_source: dict[str, list[Verdict]] = {}
    for v in verdicts:
        by_source.setdefault(v.source, []).append(v)
    kept, missing = [], []
    for source, vs in by_source.items():
        if not Path(source).exists():
            missing.append(source)
            continue
        embs = embed_moments(be, source, [v.t for v in vs])
        kept += [Verdict(v.source, v.t, v.sound, v.verdict, e.tolist(), be.model_id, v.time) for v, e in zip(vs, embs)]
    if dst.exists():
        dst.unlink()  # this adaptation's own copy; the user's original file is never touched
    FeedbackStore(dst).append(kept)
    return {"verdicts": len(kept), "missing_sources": missing}


def library_in_footage(cache: Path, sounds: str, keys: list[str]) -> dict:
    """Which of the library's files the footage plays, found by matching their waveforms in its soundtrack (label-
    free; resumable, kept in the cache): {"files": M, "playing": {sound id: starts}, "starts": total, "folder": the
    detections}."""
    from collections import Counter

    from edgeav_train.fingerprint import FingerprintConfig, detect_footage, load_detections

    folder = detect_footage(cache, sounds, FingerprintConfig(), splits=("train", "val"))
    ids, found = load_detections(folder, keys)
    counts = Counter(ids[j] for dets in found.values() for _, j, _ in dets)
    n_files = len(ids) if ids else len(audio_files(sounds))
    return {
        "files": n_files,
        "playing": dict(counts.most_common()),
        "starts": sum(counts.values()),
        "folder": str(folder),
    }


def say_library(found: dict, echo=print) -> None:
    """The table the user sees: how much of their library their footage plays."""
    echo(
        f"adapt: your footage plays {len(found['playing'])} of your {found['files']} sounds; "
        f"{found['starts']:,} starts found"
    )
    for sound, n in list(found["playing"].items())[:10]:
        echo(f"  {n:6d}  {sound}")
    if len(found["playing"]) > 10:
        echo(f"  ... and {len(found['playing']) - 10} more")


def adapt_event_head(
    cfg: AdaptConfig, model: str, out: Path, found: dict, fps: float, size: tuple[int, int]
) -> tuple[Path, dict]:
    """Fine-tune the model's event head on the footage's fingerprinted starts (a frame-rate cache of the footage;
    the same library detections `found`) and the user's verdicts on it, then set its onset threshold from the
    footage: (the model, what it trained on)."""
    from edgeav_train.builder import CacheConfig, build_cache
    from edgeav_train.events import EventTrainConfig, train_events

    cache = out / "cache-events"
    build_cache(cfg.footage, cache, CacheConfig(fps=fps, width=size[0], height=size[1]), progress=False)
    ev_out = out / "events"
    path = train_events(
        EventTrainConfig(
            model=model,
            sounds=cfg.sounds,
            out=str(ev_out),
            cache=str(cache),
            splits=("train", "val"),
            steps=cfg.event_steps,
            seed=cfg.seed,
            fingerprints=found["folder"],
            feedback=cfg.feedback,  # verdicts on this footage teach the head where and which, beside re-ranking
            calibrate=False,  # the user's footage has no event log: footage_threshold sets it below
        )
    )
    starts = found["starts"]
    trained = json.loads((ev_out / "done.json").read_text()) if (ev_out / "done.json").exists() else {}
    return path, {**trained, "onset_threshold": footage_threshold(path, cache, starts)}


def footage_threshold(model_path: Path, cache: Path, starts: int) -> dict:
    """Set the adapted head's onset threshold from the footage itself: the lowest at which it detects no more events
    than the soundtrack's fingerprinted starts (saved into the model; the threshold it had is reported)."""
    from edgeav.models import load_model, save_model
    from edgeav.pipeline import ONSET_GAP
    from edgeav_train.event_eval import clip_scores, rate_threshold
    from edgeav_train.events import FrameClips

    m = load_model(str(model_path))
    frames = FrameClips(cache, ("train", "val"))
    threshold, detected = rate_threshold([clip_scores(m.events, f)[0] for f in frames.frames], starts, ONSET_GAP)
    previous = m.card.onset_threshold
    save_model(m, model_path.with_suffix(""), m.card.replace(onset_threshold=round(threshold, 3)))
    return {"set": round(threshold, 3), "detects": detected, "starts": starts, "was": previous}


def keep_footage_prior(model_path: Path, starts: dict, weight: float) -> None:
    """The footage's starts per library sound, and the weight they rank with, into the adapted model's card."""
    from edgeav.models import load_model, save_model

    m = load_model(str(model_path))
    save_model(m, model_path.with_suffix(""), m.card.replace(footage_starts=dict(starts), prior_weight=weight))


def footage_caches(cfg: AdaptConfig, m, cache: Path) -> dict:  # noqa: ANN001
    """The footage's 5 fps window cache (its manifest returned); for an event head to adapt, its frame-rate cache
    first (OUT/cache-events), the window cache then taken from it, not decoded again, where the grids nest."""
    from edgeav_train.builder import CacheConfig, build_cache, coarser_cache

    size = m.cfg.frame_size
    if m.cfg.event_widths and cfg.event_steps:
        fine = cache.parent / "cache-events"
        build_cache(cfg.footage, fine, CacheConfig(fps=m.cfg.event_fps, width=size[0], height=size[1]), progress=False)
        man = coarser_cache(fine, cache, 5)
        if man is not None:
            return man
    return build_cache(cfg.footage, cache, CacheConfig(fps=5, width=size[0], height=size[1]), progress=False)


class StageClock:
    """Seconds each stage of an adaptation took, summed over its resumed runs (kept in OUT/seconds.json, first
    seeded from a finished run's adapt.json), so a resumed adaptation reports what it cost in all."""

    def __init__(self, out: Path) -> None:
        self.path = out / "seconds.json"
        report = out / "adapt.json"
        if self.path.exists():
            self.seconds = json.loads(self.path.read_text())
        elif report.exists():
            self.seconds = dict(json.loads(report.read_text()).get("seconds", {}))
        else:
            self.seconds = {}

    @contextmanager
    def stage(self, name: str):  # noqa: ANN201
        t0 = time.perf_counter()
        yield
        self.seconds[f"{name}_s"] = round(self.seconds.get(f"{name}_s", 0.0) + time.perf_counter() - t0, 2)
        write_json(self.path, self.seconds)


def adapt(cfg: AdaptConfig, echo=print) -> dict:
    """Adapt `cfg.model` to the footage: cache it, find which library files it plays, then stage 2 towards them
    where they play and towards the soundtrack match elsewhere (only the soundtrack match when none is found),
    for a student's whole visual encoder or a frozen-trunk model's attention head. Resumes when interrupted."""
    from edgeav.models import load_model
    from edgeav.models.store import resolve_model_path
    from edgeav_train.bank_distill import BankDistillConfig, bank_distill
    from edgeav_train.features import build_features

    if cfg.prior_weight < 0:  # refused before any work, not when the adapted card is written
        raise EdgeavError(f"--prior-weight must be ≥ 0 (got {cfg.prior_weight})", "e.g. --prior-weight 0 for none")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if not Path(cfg.sounds).is_dir():
        raise EdgeavError(f"sound library not found: {cfg.sounds}", "give the folder of your sound files")
    model_path = str(resolve_model_path(cfg.model))
    clock = StageClock(out)
    m = load_model(model_path)
    cache = out / "cache"
    with clock.stage("cache"):
        man = footage_caches(cfg, m, cache)
    for bad, why in man["bad"].items():
        echo(f"adapt: skipped {bad}: {why}")
    if not man["clips"]:
        raise EdgeavError(
            f"no usable video in {cfg.footage} ({len(man['bad'])} unreadable)",
            "give a folder of video files with sound",
        )
    frozen = getattr(m.visual.backbone, "frozen", False)
    if frozen:
        with clock.stage("features"):
            build_features(cache, m.cfg.visual_backbone, progress=False)
    with clock.stage("fingerprint"):
        found = library_in_footage(cache, cfg.sounds, list(man["clips"]))
    say_library(found, echo)
    targets = "mixed" if found["starts"] else "soundtrack"
    echo(
        "adapt: training towards the library files where they play, the soundtrack match elsewhere"
        if found["starts"]
        else "adapt: no library file was found playing in the footage: the soundtrack match teaches it (less sharp)"
    )
    learner = "head" if frozen else "visual"
    with clock.stage("stage2"):
        path = bank_distill(
            BankDistillConfig(
                model=model_path,
                sounds=cfg.sounds,
                out=str(out),
                cache=str(cache),
                steps=cfg.steps,
                seed=cfg.seed,
                splits=("train", "val"),
                targets=targets,
                train=learner,
                lr=1e-3 if frozen else 2e-3,  # as the shipped recipes train a head and a student's encoder
                stop_after=cfg.stop_after,
            )
        )
    events = None
    if m.cfg.event_widths and cfg.event_steps and found["starts"] and path.name != "checkpoint.pt":
        with clock.stage("events"):
            path, events = adapt_event_head(cfg, str(path), out, found, m.cfg.event_fps, m.cfg.frame_size)
        th = events["onset_threshold"]
        echo(
            f"adapt: onset threshold set from your footage: {th['set']} (it detects {th['detects']:,} events where "
            f"{th['starts']:,} starts play; was {th['was']})"
        )
    if found["starts"] and path.name != "checkpoint.pt":
        keep_footage_prior(path, found["playing"], cfg.prior_weight)
        echo(f"adapt: suggestions lean towards the sounds your footage plays (prior weight {cfg.prior_weight})")
    report = {
        "model": str(path),
        "clips": len(man["clips"]),
        "skipped": man["bad"],
        "footage_minutes": round(sum(e["duration_s"] for e in man["clips"].values()) / 60, 2),
        "library": found,
        "targets": targets,
        "trained": learner,
        "event_head": events,
        "seconds": clock.seconds,
        "config": asdict(cfg),
    }
    if cfg.feedback:
        report["feedback"] = {
            **reembed_feedback(cfg.feedback, out / "feedback.jsonl", str(path)),
            "file": str(out / "feedback.jsonl"),
        }
    write_json(out / "adapt.json", report)
    return report


def adapt_cmd(cfg: AdaptConfig) -> None:
    rep = adapt(cfg)
    fb = f" --feedback {rep['feedback']['file']}" if "feedback" in rep else ""
    shown = {k: v for k, v in rep.items() if k not in ("config", "library")}
    print(json.dumps(shown, indent=1))
    print(f"run it: edgeav run VIDEO --model {rep['model']}{fb}")
