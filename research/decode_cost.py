"""What bounds `edgeav run` on a file against decoding that file alone, on 2 cores?

1. The decoder's parts, one thread, over the 10-minute file `benchmarks.event_latency` joins: decoding only, then
   decoding and scaling each frame to the model's size as the product does (libswscale's area filter to RGB), and
   to the same size as YUV 4:2:0 planes, and as NV12 (YUV 4:2:0 with U and V interleaved: what `edgeav run` hands
   an event head that reads it); each with the codec's deblocking filter and without it (`edgeav run`'s default;
   research/results/deblock.md).
2. `edgeav run --events-only` (its defaults, with `--rgb` and with `--deblock`) beside decoding alone (the
   codec's frame threads, every filter, the product's scaler: the event latency benchmark's reference), in
   interleaved rounds: wall time, the run's own CPU time and its decoder process's. The decoder process works on
   one core while the model works on the other; a run cannot end before its decoder has, so decode alone / the
   decoder process's time bounds the run's speed.

Writes results/decode_cost.{json,md}.

    python -m research.decode_cost
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks.common import command_line, machine, whole_call_rounds, write_result
from research import RESULTS

SIZE = (128, 96)
PARTS = {  # what the decoder hands on per frame, and whether it deblocks
    "decoding only": (None, True),
    "decoding + scaling to 128×96 RGB (`run --deblock`)": ("rgb24", True),
    "decoding + scaling to 128×96 YUV 4:2:0 planes": ("yuv420p", True),
    "decoding only, deblocking skipped": (None, False),
    "decoding, deblocking skipped, + scaling to 128×96 RGB (`run --rgb`)": ("rgb24", False),
    "decoding, deblocking skipped, + scaling to 128×96 NV12 (`run`)": ("nv12", False),
}


def decode_pass(clip: str, fmt: str | None, deblock: bool = True) -> int:
    """Decode every frame on one thread, each scaled to `fmt` at SIZE (None: not scaled); `deblock` False skips the
    codec's loop filter."""
    import av
    from av.video.reformatter import VideoReformatter

    scaler, n = VideoReformatter(), 0
    with av.open(clip) as c:
        vs = c.streams.video[0]
        vs.codec_context.thread_count = 1
        if not deblock:
            vs.codec_context.options = {"skip_loop_filter": "all"}
        for frame in c.decode(vs):
            if fmt is not None:
                scaler.reformat(frame, *SIZE, fmt, interpolation="AREA", threads=1).to_ndarray()
            n += 1
    return n


def measure(clip: str, model: str, bank: str, rounds: int) -> dict:
    from edgeav.io import VideoFile
    from edgeav.pipeline import RunConfig, run

    forms = {name: (lambda f=fmt, d=deblock: decode_pass(clip, f, d)) for name, (fmt, deblock) in PARTS.items()}
    parts = whole_call_rounds(forms, rounds, "decoding only")
    frames = decode_pass(clip, None)

    def decode_alone() -> None:
        for _ in VideoFile(clip, fps=25.0, size=SIZE).frames():
            pass

    def run_events(**options) -> Callable[[], None]:
        return lambda: run(RunConfig(clip, model=model, bank=bank, quiet=True, events_only=True, **options))

    runs = {
        "decode alone": decode_alone,
        "run --events-only": run_events(),
        "run --events-only --rgb": run_events(rgb=True),
        "run --events-only --deblock": run_events(deblock=True),
    }
    whole = whole_call_rounds(runs, rounds, "decode alone")
    base, decoder = np.array(whole["decode alone"]["rounds_s"]), whole["run --events-only"]["rounds_child_cpu_s"]
    return {
        "frames": frames,
        "decoder_parts": {k: {**split(v), "us_per_frame": v["median_s"] / frames * 1e6} for k, v in parts.items()},
        "run": {k: split(v) for k, v in whole.items()},
        "speed": whole["run --events-only"]["speed"],
        "bound": float(np.median(base / np.array(decoder))),  # decode alone / the decoder process's CPU time
    }


def split(r: dict) -> dict:
    """A form's medians as the tables give them: wall, this process's CPU, its decoder process's."""
    return {"median_s": r["median_s"], "own_cpu_s": r["median_own_cpu_s"], "decoder_cpu_s": r["median_child_cpu_s"]}


def markdown(res: dict, cmd: str) -> str:
    r, d = res["run"], res["run"]["run --events-only"]
    lines = [
        f"The decoder's parts on one thread over {res['clip']} ({res['frames']:,} frames of 320×240 H.264), median "
        f"of {res['rounds']} interleaved rounds. Machine: {res['machine']['cpu']}.",
        "",
        "| decoder work | s | µs per frame |",
        "|---|---|---|",
        *(f"| {k} | {v['median_s']:.2f} | {v['us_per_frame']:.0f} |" for k, v in res["decoder_parts"].items()),
        "",
        f"`edgeav run --events-only` ({res['model']}) beside decoding alone (the codec's frame threads, every filter, "
        "the product's scaler), interleaved rounds: the run's own CPU time and its decoder process's.",
        "",
        "| what | median s | own CPU s | decoder process CPU s |",
        "|---|---|---|---|",
        *(f"| {k} | {v['median_s']:.2f} | {v['own_cpu_s']:.2f} | {v['decoder_cpu_s']:.2f} |" for k, v in r.items()),
        "",
        f"`run --events-only` speed vs decoding alone: {res['speed']:.2f}; decoding alone / the decoder process's "
        f"time: {res['bound']:.2f} (the decoder process works {d['decoder_cpu_s']:.2f} s of the run's "
        f"{d['median_s']:.2f} s).",
        "",
        f"Command: `{cmd}`",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    from benchmarks.value import corpus_bank
    from edgeav_train.corpus import corpus_root

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="student")
    ap.add_argument("--clip", default=".cache/bench/test-clips-10.mp4", help="benchmarks.event_latency's joined file")
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--bank-cache", default=".cache/value")
    ap.add_argument("--out", default=str(RESULTS))
    a = ap.parse_args(argv)
    if not Path(a.clip).exists():
        raise SystemExit(f"{a.clip} is missing: python -m benchmarks.event_latency makes it")
    bank = corpus_bank(a.model, corpus_root(None), Path(a.bank_cache))
    res = {"model": a.model, "clip": Path(a.clip).name, "rounds": a.rounds, "machine": machine()}
    res.update(measure(a.clip, a.model, bank, a.rounds))
    write_result("decode_cost", res, markdown(res, command_line("research.decode_cost", argv)), a.out)
    return res


if __name__ == "__main__":
    main()
