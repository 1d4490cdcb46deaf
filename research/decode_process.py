"""What does `edgeav run` on a file wait on? Two measurements on the 10-minute file `benchmarks.event_latency` joins:

1. Decoding (PyAV, one thread, scaled to 128×96 RGB on it) alone, and beside a pure-Python busy thread: PyAV gives
   the GIL up and takes it back several times per frame, and each take can wait out the other thread's switch
   interval. A run's main thread runs Python between its torch calls.
2. The run's event path over the file decoded on a thread against the same path over the file decoded in a child
   process (`edgeav.io.decode_process`, what `FileSource` does on Linux), beside decoding alone and the product's
   `edgeav run --events-only`, and optionally the product's run with another model (`--other-model`, e.g. a
   cheaper event head): paired rounds, wall and CPU time (the decoder process's included).

Linux. Writes results/decode_process.{json,md}.

    python -m research.decode_process --rounds 5
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.common import command_line, machine, whole_call_rounds, write_result
from research import RESULTS

SIZE = (128, 96)


def _frames(clip: str, limit: float | None = None):
    from edgeav.io.video import VideoFile

    v = VideoFile(clip, fps=25.0, size=SIZE, threads=1)
    return v.frames() if limit is None else v.frames(0, limit)


def decode_beside_busy_thread(clip: str, seconds: float) -> dict:
    """Seconds to decode the first `seconds` of the clip alone, then beside a thread spinning in Python."""

    def decode() -> int:
        return sum(1 for _ in _frames(clip, seconds))

    t0 = time.perf_counter()
    n = decode()
    alone = time.perf_counter() - t0
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            pass

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    t0 = time.perf_counter()
    decode()
    beside = time.perf_counter() - t0
    stop.set()
    spinner.join()
    return {"frames": n, "alone_s": alone, "beside_busy_thread_s": beside}


def event_path(clip: str, model: str, decoder: str) -> Callable[[], None]:
    """`edgeav run --events-only`'s event path (its detector, its calls) over the file as a `FileSource` with
    `decoder` ("thread" or "process") decodes it, one decoder thread as the run gives it on 2 cores."""
    from edgeav.backends import load_backend
    from edgeav.io.sources import FileSource
    from edgeav.pipeline import EVENT_BATCH, RunConfig, event_detector, model_threads

    cfg = RunConfig(clip, model=model, events_only=True)
    be = load_backend(model, threads=model_threads(cfg))

    def run() -> None:
        det, run_ = event_detector(cfg, be), []
        for t, f in FileSource(clip, 25.0, SIZE, threads=1, decoder=decoder):
            run_.append((t, f, None))
            if len(run_) == EVENT_BATCH:
                det.push_many(run_)
                run_ = []
        det.push_many(run_)
        det.flush()

    return run


def file_rounds(clip: str, model: str, rounds: int, other: str | None) -> dict:
    from edgeav.io import VideoFile
    from edgeav.pipeline import RunConfig, run

    def decode() -> None:
        for _ in VideoFile(clip, fps=25.0, size=SIZE).frames():
            pass

    forms = {
        "decode alone": decode,
        "run --events-only (the product: decoding in a child process)": lambda: run(
            RunConfig(clip, model=model, quiet=True, events_only=True)
        ),
        "run's event path, decoding on a thread": event_path(clip, model, "thread"),
        "run's event path, decoding in a child process": event_path(clip, model, "process"),
    }
    if other:
        forms[f"run --events-only with {other}"] = lambda: run(
            RunConfig(clip, model=other, quiet=True, events_only=True)
        )
    return whole_call_rounds(forms, rounds, "decode alone")


def markdown(res: dict, cmd: str) -> str:
    g = res["gil"]
    lines = [
        f"Decoding the first {res['gil_seconds']:.0f} s of {res['clip']} ({g['frames']} frames, one thread, 128×96 "
        f"RGB): {g['alone_s']:.2f} s alone, {g['beside_busy_thread_s']:.2f} s beside a thread spinning in Python.",
        "",
        f"The run's event path ({res['model']}) over the whole file decoded on a thread or in a child process (one "
        f"decoder thread, as a run on 2 cores has it), beside decoding alone (PyAV in this process, the codec's frame "
        f"threads) and the product's run; median of {res['rounds']} interleaved rounds; CPU includes the decoder "
        f"process; speed = decode time / its time in the same round. Machine: {res['machine']['cpu']}.",
        "",
        "| what | median s | CPU s | speed vs decoding alone |",
        "|---|---|---|---|",
    ]
    for name, r in res["file"].items():
        lines.append(f"| {name} | {r['median_s']:.2f} | {r['median_cpu_s']:.2f} | {r['speed']:.2f} |")
    return "\n".join(lines + ["", f"Command: `{cmd}`"]) + "\n"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="student")
    ap.add_argument("--clip", default=".cache/bench/test-clips-10.mp4", help="benchmarks.event_latency's joined file")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--other-model", default=None, help="a run --events-only row with this model too")
    ap.add_argument("--gil-seconds", type=float, default=45.0, help="footage decoded beside the busy thread")
    ap.add_argument("--out", default=str(RESULTS))
    a = ap.parse_args(argv)
    if not Path(a.clip).exists():
        raise SystemExit(f"{a.clip} is missing: python -m benchmarks.event_latency makes it")
    res = {
        "model": a.model,
        "clip": Path(a.clip).name,
        "rounds": a.rounds,
        "machine": machine(),
        "gil_seconds": a.gil_seconds,
        "gil": decode_beside_busy_thread(a.clip, a.gil_seconds),
        "file": file_rounds(a.clip, a.model, a.rounds, a.other_model),
    }
    write_result("decode_process", res, markdown(res, command_line("research.decode_process", argv)), a.out)
    return res


if __name__ == "__main__":
    main()
