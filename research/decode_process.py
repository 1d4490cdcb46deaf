"""What does `edgeav run` on a file wait on? Two measurements on the 10-minute file `benchmarks.event_latency` joins:

1. Decoding (PyAV, one thread, scaled to 128×96 RGB on it) alone, and beside a pure-Python busy thread: PyAV gives
   the GIL up and takes it back several times per frame, and each take can wait out the other thread's switch
   interval. A run's main thread runs Python between its torch calls.
2. `edgeav run --events-only` as the product runs it (decoding on a thread) against a prototype with the decoder in
   a forked child process writing into a shared-memory ring (the event head in the parent, in the run's calls),
   beside decoding alone, and optionally the product's run with another model (`--other-model`, e.g. a cheaper
   event head): paired rounds, wall time.

The prototype is research, not the product's source: no error hand-back, no camera path. Linux (fork). Writes
results/decode_process.{json,md}.

    python -m research.decode_process --rounds 5
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import threading
import time
from multiprocessing import shared_memory
from pathlib import Path

import numpy as np

from benchmarks.common import command_line, machine, write_result
from research import RESULTS

SIZE = (128, 96)
SLOTS = 512  # frames in the ring: the child decodes up to this far ahead
RUN = 64  # frames per hand-off, the run's event batch


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


def _producer(clip: str, name: str, free_q, full_q) -> None:  # noqa: ANN001
    shm = shared_memory.SharedMemory(name=name)
    ring = np.ndarray((SLOTS, SIZE[1], SIZE[0], 3), np.uint8, buffer=shm.buf)
    batch = []
    for t, f in _frames(clip):
        s = free_q.get()
        ring[s] = f
        batch.append((t, s))
        if len(batch) == RUN:
            full_q.put(batch)
            batch = []
    full_q.put(batch)
    full_q.put(None)
    del ring
    shm.close()


def run_with_decode_process(clip: str, model: str) -> int:
    """The run's event path over frames a child process decodes; frames processed."""
    from edgeav.backends import load_backend
    from edgeav.pipeline import RunConfig, event_detector, model_threads

    cfg = RunConfig(clip, model=model, events_only=True)
    det = event_detector(cfg, load_backend(model, threads=model_threads(cfg)))
    shm = shared_memory.SharedMemory(create=True, size=SLOTS * SIZE[0] * SIZE[1] * 3)
    ring = np.ndarray((SLOTS, SIZE[1], SIZE[0], 3), np.uint8, buffer=shm.buf)
    ctx = mp.get_context("fork")
    free_q, full_q = ctx.Queue(), ctx.Queue()
    for s in range(SLOTS):
        free_q.put(s)
    child = ctx.Process(target=_producer, args=(clip, shm.name, free_q, full_q))
    child.start()
    n = 0
    try:
        while (batch := full_q.get()) is not None:
            items = [(t, ring[s].copy(), None) for t, s in batch]
            for _, s in batch:
                free_q.put(s)
            det.push_many(items)
            n += len(items)
        det.flush()
    finally:
        child.join(timeout=5)
        del ring
        shm.close()
        shm.unlink()
    return n


def file_rounds(clip: str, model: str, rounds: int, other: str | None) -> dict:
    from edgeav.io import open_source
    from edgeav.pipeline import RunConfig, run

    def decode() -> None:
        for _ in open_source(clip, 25.0, SIZE):
            pass

    forms = {
        "decode alone": decode,
        "run --events-only (decoding on a thread: the product)": lambda: run(
            RunConfig(clip, model=model, quiet=True, events_only=True)
        ),
        "run's event path, decoding in a child process (prototype)": lambda: run_with_decode_process(clip, model),
    }
    if other:
        forms[f"run --events-only with {other}"] = lambda: run(
            RunConfig(clip, model=other, quiet=True, events_only=True)
        )
    times: dict[str, list[float]] = {k: [] for k in forms}
    for _ in range(rounds):
        for name, fn in forms.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    base = np.array(times["decode alone"])
    return {
        k: {"median_s": float(np.median(v)), "speed_vs_decode": float(np.median(base / np.array(v))), "rounds_s": v}
        for k, v in times.items()
    }


def markdown(res: dict, cmd: str) -> str:
    g = res["gil"]
    lines = [
        f"Decoding the first {res['gil_seconds']:.0f} s of {res['clip']} ({g['frames']} frames, one thread, 128×96 "
        f"RGB): {g['alone_s']:.2f} s alone, {g['beside_busy_thread_s']:.2f} s beside a thread spinning in Python.",
        "",
        f"`edgeav run --events-only` ({res['model']}) on the whole file against the same event path with the decoder "
        f"in a child process; wall time, median of {res['rounds']} interleaved rounds; speed = decode time / its time "
        f"in the same round. Machine: {res['machine']['cpu']}.",
        "",
        "| what | median s | speed vs decoding alone |",
        "|---|---|---|",
    ]
    for name, r in res["file"].items():
        lines.append(f"| {name} | {r['median_s']:.2f} | {r['speed_vs_decode']:.2f} |")
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
