"""Microphone audio through sounddevice (optional: `pip install 'edgeav[mic]'`), as timestamped mono blocks."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator

import numpy as np

from edgeav.errors import EdgeavError


class Microphone:
    """Iterate `(t_seconds, float32 mono block)` from an input device; blocks a slow consumer missed are counted
    in `dropped` (a bounded queue, never unbounded growth)."""

    def __init__(
        self, sample_rate: int = 16000, block_s: float = 0.1, device: int | str | None = None, max_blocks: int = 50
    ) -> None:
        try:
            import sounddevice as sd
        except (ImportError, OSError) as e:  # OSError: PortAudio library missing
            raise EdgeavError(
                f"microphone input needs sounddevice/PortAudio ({type(e).__name__})",
                "pip install 'edgeav[mic]' (and apt-get install libportaudio2)",
            ) from None
        self.sr, self.dropped = sample_rate, 0
        self.q: queue.Queue = queue.Queue(maxsize=max_blocks)
        self.t0 = time.perf_counter()

        def callback(indata: np.ndarray, frames: int, time_info: object, status: object) -> None:
            try:
                self.q.put_nowait((time.perf_counter() - self.t0, indata.mean(axis=1).astype(np.float32)))
            except queue.Full:
                self.dropped += 1

        try:
            self.stream = sd.InputStream(
                samplerate=sample_rate,
                blocksize=int(block_s * sample_rate),
                channels=1,
                device=device,
                callback=callback,
            )
            self.stream.start()
        except Exception as e:
            raise EdgeavError(
                f"cannot open microphone {device if device is not None else '(default)'}: "
                f"{' '.join(str(e).split())[:120]}",
                "check the input device (python -m sounddevice)",
            ) from None

    def __iter__(self) -> Iterator[tuple[float, np.ndarray]]:
        while self.stream.active:
            try:
                yield self.q.get(timeout=1.0)
            except queue.Empty:
                continue

    def close(self) -> None:
        self.stream.stop()
        self.stream.close()
