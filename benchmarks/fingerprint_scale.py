"""Finding a library's files in footage as the library grows: the landmark index (edgeav.landmarks) over the
corpus's real library, then with synthetic distractors up to 10k and 100k files, each hashed as the product hashes
a library of its size (`LandmarkConfig.for_library`: pairs of peaks, triplets from 2,000 files; `--both` adds
the other hashing at every size, to compare). Per size: index time, its size,
footage minutes per CPU-minute (lookup + verification; decoding apart), and start precision / recall against the
event logs of the corpus's val clips (a start counts within ±40 ms; file right among the matched). The exact
matcher's full scan (every template over the whole soundtrack) is timed on the real library beside it.

Distractors are the real openings changed (resampled 0.6–0.9× or 1.1–1.6×: the same sound higher or lower, as
libraries hold variants) and synthetic effects (decaying, gliding tones and filtered noise bursts), seeded.

    python -m benchmarks.fingerprint_scale [--sizes 10000 100000] [--both]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from benchmarks.common import RESULTS, command_line, write_result

TOLERANCE_S = 0.04


def real_library(root: Path, cfg) -> tuple[list[str], list[np.ndarray]]:  # noqa: ANN001
    from edgeav.io import audio_files
    from edgeav.landmarks import read_opening

    ids, waves = [], []
    for p in audio_files(root / "sounds"):
        if (a := read_opening(p, cfg)) is not None:
            ids.append(p.relative_to(root / "sounds").as_posix())
            waves.append(a)
    return ids, waves


def distractors(real: list[np.ndarray], n: int, cfg, seed: int = 0) -> np.ndarray:  # noqa: ANN001
    """(n, opening length) float32: half changed copies of real openings, half synthetic effects."""
    from scipy.signal import lfilter, resample

    rng = np.random.default_rng(seed)
    length = int(cfg.template_s * cfg.sample_rate)
    out = np.zeros((n, length), np.float32)
    t = np.arange(length) / cfg.sample_rate
    for i in range(n):
        if i % 2 == 0:
            src = real[rng.integers(len(real))]
            factor = rng.choice([rng.uniform(0.6, 0.9), rng.uniform(1.1, 1.6)])
            w = resample(src, max(16, int(len(src) / factor)))[:length]
        else:
            w = np.zeros(length)
            for _ in range(rng.integers(1, 4)):
                start = rng.uniform(0, 0.05)
                env = np.exp(-np.maximum(t - start, 0) / rng.uniform(0.01, 0.2)) * (t >= start)
                if rng.random() < 0.5:
                    f0, f1 = rng.uniform(100, 6000, 2)
                    w += env * np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * t[-1])))
                else:
                    a = rng.uniform(0.5, 0.98)
                    w += env * lfilter([1 - a], [1, -a], rng.standard_normal(length))
        out[i, : len(w)] = w * rng.uniform(0.2, 1.0) / max(np.abs(w).max(), 1e-9)
    return out


def soundtracks(root: Path, sample_rate: int, split: str = "val", every: int = 1) -> tuple[list, float]:
    """[(clip, soundtrack, events)] of every `every`-th clip of `split`, and the seconds spent decoding them."""
    from edgeav.io import VideoFile
    from edgeav_train.corpus import load_clips

    out, t0 = [], time.perf_counter()
    for clip in load_clips(root, split)[::every]:
        v = VideoFile(str(clip.video), fps=None, sample_rate=sample_rate, require_audio=True)
        x = v.audio(0, v.duration + 1).astype(np.float32)
        v.close()
        out.append((clip, x, json.loads(clip.events.read_text())["sound_events"]))
    return out, time.perf_counter() - t0


def matched(dets: list, events: list[dict], ids: list[str]) -> list[tuple[int, int]]:
    """(detection, event) pairs within ±40 ms, one each: detections of an event's own file first (two sounds that
    start together are each matched to their own), then the rest by time."""
    from edgeav.score import match_times

    pairs: list[tuple[int, int]] = []
    for sound in {e["sound_id"] for e in events}:
        di = [i for i, d in enumerate(dets) if d[1] < len(ids) and ids[d[1]] == sound]
        ej = [j for j, e in enumerate(events) if e["sound_id"] == sound]
        pairs += [
            (di[a], ej[b]) for a, b in match_times([dets[i][0] for i in di], [events[j]["t"] for j in ej], TOLERANCE_S)
        ]
    di = sorted(set(range(len(dets))) - {i for i, _ in pairs})
    ej = sorted(set(range(len(events))) - {j for _, j in pairs})
    rest = match_times([dets[i][0] for i in di], [events[j]["t"] for j in ej], TOLERANCE_S)
    return pairs + [(di[a], ej[b]) for a, b in rest]


def scored(found: list[list], tracks: list, ids: list[str]) -> dict:
    """Start precision / recall within ±40 ms (one detection per event) and file right among matched."""
    tp = n_pred = n_true = right = 0
    for dets, (_, _, ev) in zip(found, tracks):
        pairs = matched(dets, ev, ids)
        tp, n_pred, n_true = tp + len(pairs), n_pred + len(dets), n_true + len(ev)
        right += sum(dets[i][1] < len(ids) and ids[dets[i][1]] == ev[j]["sound_id"] for i, j in pairs)
    return {
        "precision": round(tp / max(n_pred, 1), 4),
        "recall": round(tp / max(n_true, 1), 4),
        "file_right": round(right / max(tp, 1), 4),
        "starts": n_pred,
        "events": n_true,
    }


def measure(ids: list[str], waves, tracks: list, fields: dict, hashes: str | None = None) -> dict:  # noqa: ANN001
    """Index `waves` (the real library first) with the settings the product picks for their number (`hashes`:
    "pairs" or "triplets" to force either), `fields` overriding; then find starts in every soundtrack."""
    from edgeav.landmarks import TRIPLETS_FROM, FootageSearch, LandmarkConfig, LandmarkIndex, unit_opening

    size = {"pairs": 0, "triplets": TRIPLETS_FROM}.get(hashes, len(waves))  # a forced hashing, or the library's
    cfg = LandmarkConfig.for_library(size, **fields)
    c0 = time.process_time()
    index = LandmarkIndex(cfg)
    index.add_many(ids, waves)
    index_cpu = time.process_time() - c0
    openings: dict[int, np.ndarray] = {}

    def opening(j: int) -> np.ndarray:
        if j not in openings:
            openings[j] = unit_opening(waves[j], cfg)
        return openings[j]

    search = FootageSearch(index, opening, lambda j: waves[j])
    c0 = time.process_time()
    for _, x, _ in tracks:
        search.survey(x)
    survey_cpu = time.process_time() - c0
    found = [search.find(x) for _, x, _ in tracks]
    lookup_cpu = time.process_time() - c0
    minutes = sum(len(x) for _, x, _ in tracks) / cfg.sample_rate / 60
    return {
        "files": len(waves),
        "hashes": cfg.hashing,
        "index_cpu_s": round(index_cpu, 2),
        "index_mb": round((index.hashes.nbytes + index.files.nbytes + index.frames.nbytes) / 1e6, 1),
        "hashes_per_file": round(len(index.hashes) / len(waves), 1),
        "footage_min_per_cpu_min": round(minutes / (lookup_cpu / 60), 1),
        "survey_share": round(survey_cpu / lookup_cpu, 3),
        "files_present": len(search.present) if search.two_pass else None,
        **scored(found, tracks, ids),
    }


def exact_scan(root: Path, tracks: list) -> dict:
    """The exact matcher's full scan (edgeav_train.fingerprint.detect) on the real library, for comparison."""
    from edgeav_train.fingerprint import FingerprintConfig, Templates, detect

    templates = Templates(root / "sounds", FingerprintConfig())
    c0 = time.process_time()
    found = [detect(x.astype(np.float64), templates) for _, x, _ in tracks]
    cpu = time.process_time() - c0
    minutes = sum(len(x) for _, x, _ in tracks) / 16000 / 60
    return {"files": len(templates.ids), "footage_min_per_cpu_min": round(minutes / (cpu / 60), 2)} | scored(
        found, tracks, templates.ids
    )


def markdown(res: dict, cmd: str) -> str:
    lines = [
        f"Library files found in the soundtracks of the corpus's {res['val_clips']} {res.get('split', 'val')} clips "
        f"({res['val_minutes']:.0f} min, {res['events']} logged starts; a start counts within ±40 ms): the landmark "
        "index (candidates) and the exact matcher on the candidates only, beside the exact matcher's full scan. "
        "A library hashed in triplets is searched in two passes (edgeav.landmarks.FootageSearch): every soundtrack "
        "surveyed for which files play, then searched for those files alone with a pair-hashed index of them; "
        "`files heard` is how many the survey named. "
        f"CPU time of survey, lookup and verification (decoding the soundtracks apart: {res['decode_s']:.0f} s).",
        "",
        "| library | files | hashes | files heard | index CPU s | index MB | footage min per CPU-min | precision | "
        "recall | file right |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in res["rows"]:
        heard = r.get("files_present")
        lines.append(
            f"| {r['name']} | {r['files']:,} | {r.get('hashes', '—')} | {heard if heard is not None else '—'} | "
            f"{r.get('index_cpu_s', '—')} | {r.get('index_mb', '—')} | "
            f"{r['footage_min_per_cpu_min']} | {r['precision']:.3f} | {r['recall']:.3f} | {r['file_right']:.3f} |"
        )
    lines += ["", f"Reproduce: `{cmd}`"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    from edgeav.landmarks import LandmarkConfig
    from edgeav_train.corpus import corpus_root

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", default=None)
    ap.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000])
    ap.add_argument("--split", default="val", help="whose clips' soundtracks are searched (train: to choose settings)")
    ap.add_argument("--every", type=int, default=1, help="every N-th clip of the split")
    ap.add_argument("--no-exact", action="store_true", help="skip the full-scan comparison")
    ap.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="LandmarkConfig fields to change")
    ap.add_argument("--both", action="store_true", help="each larger library also hashed the other way, to compare")
    ap.add_argument("--out", default=str(RESULTS))
    a = ap.parse_args(argv)
    root = corpus_root(a.corpus)
    fields = {f.name: f.type for f in dataclasses.fields(LandmarkConfig)}
    pairs = [kv.split("=", 1) for kv in a.set]
    overrides = {k: (float if fields[k] == "float" else int)(v) for k, v in pairs}
    cfg = LandmarkConfig(**overrides)
    ids, waves = real_library(root, cfg)
    tracks, decode_s = soundtracks(root, cfg.sample_rate, a.split, a.every)
    rows = [{"name": "corpus library", **measure(ids, waves, tracks, overrides)}]
    print(rows[-1], flush=True)
    if not a.no_exact:
        rows.append({"name": "corpus library, exact full scan", **exact_scan(root, tracks)})
        print(rows[-1], flush=True)
    for n in a.sizes:
        extra = distractors(waves, n - len(waves), cfg)
        names = ids + [f"synthetic/{i:06d}" for i in range(len(extra))]
        other = {"pairs": "triplets", "triplets": "pairs"}[LandmarkConfig.for_library(n).hashing]
        for hashes in (None, other) if a.both else (None,):
            row = measure(names, [*waves, *extra], tracks, overrides, hashes)
            rows.append({"name": f"+ {n - len(waves):,} distractors", **row})
            print(rows[-1], flush=True)
    res = {
        "split": a.split,
        "val_clips": len(tracks),  # the searched clips (of `split`)
        "val_minutes": sum(len(x) for _, x, _ in tracks) / cfg.sample_rate / 60,
        "events": rows[0]["events"],
        "decode_s": round(decode_s, 1),
        "rows": rows,
    }
    name = "fingerprint_scale" if a.split == "val" else f"fingerprint_scale-{a.split}"  # train: settings are chosen
    write_result(name, res, markdown(res, command_line("fingerprint_scale", argv)), a.out)
    return res


if __name__ == "__main__":
    main()
