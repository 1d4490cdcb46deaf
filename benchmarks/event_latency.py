"""The event head's cost: per frame (one frame pass + the temporal head, as `edgeav run` calls them) in every form
this machine runs, and `edgeav run` on a file against decoding that file alone, timed side by side.

Per frame: interleaved rounds over the forms (warm up, then time), p50 = median of the rounds' medians. File speed:
rounds of (decode alone, run --events-only, run with windows) on the same file — the test clips joined end to end
into one `--minutes` long file (remuxed, not re-encoded), so a run's fixed costs (loading the model and the bank)
weigh as on a real file; the speed ratio is decode time / run time per round, its median reported (≥ 1 would be
faster than decoding, impossible; 0.8 = 80% of decode speed).

    python -m benchmarks.event_latency --model student --threads 2
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks.common import (
    RESULTS,
    call_times,
    command_line,
    int8_export,
    machine,
    whole_call_rounds,
    write_result,
)


def forms(model: str, exports: str, corpus: str | None, calib_windows: int, threads: int) -> dict:
    """name → a function giving the backend (exports made on first use)."""
    from edgeav.backends import load_backend

    def int8(kind: str, which: int = 1):
        def make():
            return load_backend(int8_export(model, exports, corpus, calib_windows, kind)[which], threads=threads)

        return make

    return {
        "torch fp32": lambda: load_backend(model, "torch", threads=threads),
        "onnxruntime fp32": int8("int8-cpu", 0),
        "onnxruntime int8-cpu": int8("int8-cpu"),
        "onnxruntime int8 (TensorRT's Q/DQ form, exact)": int8("int8"),
    }


def per_frame(backends: dict, frames: np.ndarray, rounds: int, calls: int) -> dict:
    per_round: dict[str, list[float]] = {k: [] for k in backends}
    for _ in range(rounds):
        for name, be in backends.items():
            spec = be.event_spec
            codes = np.zeros((1, spec.length, be.cfg.event_dim), np.float32)
            k = [1]

            def step(be=be, codes=codes, k=k):
                i = 1 + k[0] % (len(frames) - 1)
                code, _ = be.encode_event_frames(frames[i - 1 : i + 1])
                codes[0, :-1] = codes[0, 1:]
                codes[0, -1] = code[0]
                be.score_events(codes)
                k[0] += 1

            per_round[name].append(float(np.median(call_times(step, 50, calls, 0.2))))
    return {k: {"p50_ms": float(np.median(v)), "rounds_p50_ms": v} for k, v in per_round.items()}


def joined_clip(clips: list[Path], out: Path) -> Path:
    """The clips' streams remuxed end to end into one file (they share codecs and time bases: the recorder's)."""
    import av

    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".part.mp4")
    with av.open(str(tmp), "w") as dst:
        streams: list = []
        ends = [0, 0]  # per stream, where the joined file's decode timestamps have got to
        for clip in clips:
            with av.open(str(clip)) as src:
                ins = [src.streams.video[0], src.streams.audio[0]]
                streams = streams or [dst.add_stream_from_template(s) for s in ins]
                shift: list[int | None] = [None, None]  # each clip starts where the last one's timestamps end
                for pkt in src.demux(*ins):
                    if pkt.dts is None:  # the demuxer's flush packet
                        continue
                    k = ins.index(pkt.stream)
                    if shift[k] is None:
                        shift[k] = ends[k] - pkt.dts
                    pkt.pts, pkt.dts = pkt.pts + shift[k], pkt.dts + shift[k]
                    ends[k] = max(ends[k], pkt.dts + (pkt.duration or 1))
                    pkt.stream = streams[k]
                    dst.mux(pkt)
    tmp.replace(out)
    return out


def decode_with_swscale_threads(clip: str, size: tuple[int, int]) -> None:
    """Decoding as `decode alone` does, but scaled with libswscale's default of a thread per core (PyAV's
    `reformat(threads=0)`): what the product's one-thread scaling is measured against."""
    import av
    from av.video.reformatter import VideoReformatter

    with av.open(clip) as c:
        vs = c.streams.video[0]
        vs.thread_type = "AUTO"
        scaler = VideoReformatter()
        for frame in c.decode(vs):
            scaler.reformat(frame, *size, "rgb24", interpolation="AREA", threads=0).to_ndarray()


def head_alone(model: str, clip: str, fps: float, size: tuple[int, int]) -> Callable[[], None]:
    """The event head over the file's frames, decoded beforehand as `edgeav run` decodes them, in its calls (runs of
    EVENT_BATCH frames, the run's model threads): what a run adds to decoding."""
    from edgeav.backends import load_backend
    from edgeav.heap import keep_freed_memory
    from edgeav.io import open_source
    from edgeav.pipeline import EVENT_BATCH, RunConfig, event_detector, model_threads

    keep_freed_memory()  # as `edgeav run` does
    cfg = RunConfig(clip, model=model, events_only=True)
    be = load_backend(model, threads=model_threads(cfg))
    # the frames as the run hands them on: deblocking skipped, YUV 4:2:0 planes to a head that reads them
    frames = [(t, f, None) for t, f in open_source(clip, fps, size, deblock=False, yuv420=be.reads_yuv420)]

    def run() -> None:
        det = event_detector(cfg, be)
        for i in range(0, len(frames), EVENT_BATCH):
            det.push_many(frames[i : i + EVENT_BATCH])

    return run


def file_speed(model: str, int8_cpu: str | None, clip: str, bank: str, rounds: int) -> dict:
    """Rounds of decode alone and `edgeav run` forms on one clip, each at the product's default threads, and two
    references: decoding with libswscale's threads, and the event head alone. Wall and CPU time (the run's decoder
    process included).

    Decode alone is PyAV in this process, the codec's frame threads on every core, scaled to the model's frame size
    by the product's scaler: the frames a run needs, got the plainest way."""
    from edgeav.io import VideoFile
    from edgeav.models import load_model
    from edgeav.pipeline import RunConfig, run

    cfg = load_model(model).cfg

    def decode(deblock: bool = True) -> Callable[[], None]:
        def frames() -> None:
            for _ in VideoFile(clip, fps=cfg.event_fps, size=cfg.frame_size, deblock=deblock).frames():
                pass

        return frames

    def runner(m: str, **kw):
        return lambda: run(RunConfig(clip, model=m, bank=bank, quiet=True, **kw))

    forms = {
        "decode alone": decode(),
        "run --events-only": runner(model, events_only=True),
        "run --events-only --deblock": runner(model, events_only=True, deblock=True),
        "run --events-only --rgb": runner(model, events_only=True, rgb=True),
        "run (events + windows)": runner(model),
    }
    if int8_cpu is not None:
        forms["run --events-only, ONNX int8-cpu"] = runner(int8_cpu, events_only=True)
    forms["reference: decode alone, scaled on libswscale's threads"] = lambda: decode_with_swscale_threads(
        clip, cfg.frame_size
    )
    forms["reference: decode alone, deblocking skipped (as `run` decodes)"] = decode(deblock=False)
    forms["reference: the event head alone (frames decoded beforehand)"] = head_alone(
        model, clip, cfg.event_fps, cfg.frame_size
    )
    return whole_call_rounds(forms, rounds, "decode alone")


def markdown(res: dict, cmd: str) -> str:
    lines = [
        f"Event head cost ({res['model']}, {res['threads']} threads, batch 1, one frame pass + the temporal head per "
        f"frame; {res['rounds']} interleaved rounds of {res['calls']} calls after warm-up). Machine: "
        f"{res['machine']['cpu']}.",
        "",
        "| form | ms per frame (p50) | frames/s |",
        "|---|---|---|",
    ]
    for name, r in res["per_frame"].items():
        if "error" in r:
            lines.append(f"| {name} | unavailable: {r['error']} | |")
        else:
            lines.append(f"| {name} | {r['p50_ms']:.3f} | {1e3 / r['p50_ms']:.0f} |")
    lines += [
        "",
        f"`edgeav run` on {res['clip']} ({res['clip_s'] / 60:.1f} min at 25 fps: the first test clips joined), "
        f"whole-call wall time, median of {res['file_rounds']} interleaved rounds, each run at its default threads "
        "(the model on all cores but one; a child process decodes ahead on the other, skipping the codec's deblocking "
        "filter unless --deblock, to the YUV 4:2:0 planes the event head reads unless --rgb); decode alone is PyAV "
        "with the codec's frame threads on every core and every filter, to RGB; CPU includes the decoder process; "
        "speed = decode time / run time in the same round:",
        "",
        "| what | median s | CPU s (threads and decoder process) | speed vs decoding alone |",
        "|---|---|---|---|",
    ]
    for name, r in res["file"].items():
        cpu = f"{r['median_cpu_s']:.2f}" if "median_cpu_s" in r else ""
        lines.append(f"| {name} | {r['median_s']:.2f} | {cpu} | {r['speed']:.2f} |")
    lines += ["", f"Reproduce: `{cmd}`"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    import torch

    from benchmarks.value import corpus_bank
    from edgeav.errors import EdgeavError
    from edgeav.io import VideoFile
    from edgeav.models import load_model
    from edgeav_train.corpus import corpus_root, load_clips

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="student")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=300)
    # decoding alone on the codec's frame threads varies by a quarter from round to round on 2 cores: 11 rounds
    ap.add_argument("--file-rounds", type=int, default=11, help="interleaved rounds of the whole-file timings")
    ap.add_argument("--minutes", type=int, default=10, help="length of the file `run` is timed on (test clips joined)")
    ap.add_argument("--work", default=".cache/bench", help="where the joined file is kept")
    ap.add_argument("--exports", default="exports")
    ap.add_argument("--calib-windows", type=int, default=256)
    ap.add_argument("--corpus", default=None)
    ap.add_argument("--bank-cache", default=".cache/value")
    ap.add_argument("--out", default=str(RESULTS))
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    root = corpus_root(a.corpus)
    tests = [c.video for c in load_clips(root, "test")]
    cfg = load_model(a.model).cfg
    v = VideoFile(str(tests[0]), fps=cfg.event_fps, size=cfg.frame_size)
    frames = np.stack([f for _, f in v.frames(0, 20)])
    n_clips = min(len(tests), int(np.ceil(a.minutes * 60 / v.duration)))
    v.close()
    clip = joined_clip(tests[:n_clips], Path(a.work) / f"test-clips-{n_clips}.mp4")
    v = VideoFile(str(clip), fps=cfg.event_fps, size=cfg.frame_size)
    clip_s = v.duration
    v.close()
    backends, per = {}, {}
    for name, make in forms(a.model, a.exports, str(root), a.calib_windows, a.threads).items():
        try:
            backends[name] = make()
        except EdgeavError as e:
            per[name] = {"error": str(e)}
    per = {**per_frame(backends, frames, a.rounds, a.calls), **per}
    bank = corpus_bank(a.model, root, Path(a.bank_cache))
    int8_cpu = None
    if "onnxruntime int8-cpu" in backends:
        int8_cpu = str(int8_export(a.model, a.exports, str(root), a.calib_windows, "int8-cpu")[1])
    res = {
        "model": a.model,
        "threads": a.threads,
        "rounds": a.rounds,
        "calls": a.calls,
        "machine": machine(),
        "per_frame": per,
        "clip": clip.name,
        "clip_s": clip_s,
        "file_rounds": a.file_rounds,
        "file": file_speed(a.model, int8_cpu, str(clip), bank, a.file_rounds),
    }
    write_result("event_latency", res, markdown(res, command_line("event_latency", argv)), a.out)
    return res


if __name__ == "__main__":
    main()
