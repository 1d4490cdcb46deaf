"""A file's frames decoded in a forked child process and read from a shared-memory ring.

A decoding thread beside the model waits on the GIL: PyAV gives it up and takes it back several times per frame,
and the model's Python between its torch calls holds it (research/results/decode_process.md: 45 s of footage
decodes in 0.26 s alone and 23.8 s beside a thread busy in Python). A child process has an interpreter of its own;
the reader only copies finished frames out of the ring.

The child writes frame k into slot k mod `slots` once the reader has freed it (a semaphore counts the free slots)
and sends the frames' times down a pipe in runs of `run`. It ends by sending "end" (with the file's `truncated`
flag) or the error it met, after the frames decoded before it. The reader ends the child and unlinks the ring on
every way out: the last frame, an error, a reader that stops early.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
from collections.abc import Iterator
from multiprocessing import shared_memory

import numpy as np

from edgeav.errors import EdgeavError
from edgeav.io._av import _short
from edgeav.io.video import VideoFile


def available() -> bool:
    """Linux only: it forks (no re-import, no pickling of the reader's objects), and a forked child is safe there;
    macOS system frameworks are not fork-safe."""
    return sys.platform.startswith("linux") and "fork" in mp.get_all_start_methods()


class ChildDecoder:
    """Iterate `(t, frame)` over `video.frames()`, decoded by a child process up to `slots` frames ahead."""

    def __init__(self, video: VideoFile, slots: int = 64, run: int = 8) -> None:
        self.video = video
        shape = video.frame_shape
        ctx = mp.get_context("fork")
        self.shm: shared_memory.SharedMemory | None = shared_memory.SharedMemory(
            create=True, size=slots * int(np.prod(shape))
        )
        self.name = self.shm.name  # the ring's name under /dev/shm while it exists
        self.ring: np.ndarray | None = np.ndarray((slots, *shape), np.uint8, buffer=self.shm.buf)
        self.free = ctx.Semaphore(slots)
        self.conn, send = ctx.Pipe(duplex=False)
        self.process = ctx.Process(
            target=_decode_into_ring,
            args=(video, self.ring, self.free, send, run, os.getpid()),
            name="edgeav-decode",
            daemon=True,
        )
        for stream in (sys.stdout, sys.stderr):  # the child must not write the reader's buffered output again
            if stream is not None:
                stream.flush()
        try:
            self.process.start()
        except BaseException:
            self.close()
            raise
        finally:
            send.close()  # the child's end: with it closed here, a child that dies reads as end-of-file

    def __iter__(self) -> Iterator[tuple[float, np.ndarray]]:
        ring, k = self.ring, 0
        try:
            while True:
                kind, payload = self._receive()
                if kind == "frames":
                    for t in payload:
                        frame = ring[k % len(ring)].copy()
                        self.free.release()
                        k += 1
                        yield t, frame
                elif kind == "end":
                    self.video.truncated = payload
                    return
                else:
                    raise payload
        finally:
            del ring
            self.close()

    def _receive(self) -> tuple[str, object]:
        try:
            return self.conn.recv()
        except (EOFError, OSError):
            self.process.join(timeout=1)
            raise EdgeavError(
                f"decoding {self.video.path} stopped: its decoder process ended (exit code {self.process.exitcode})",
                "run again; if it repeats, re-encode the file, e.g. ffmpeg -i IN -c:v libx264 OUT.mp4",
            ) from None

    def close(self) -> None:
        """End the child (at once if it is still decoding) and free the ring; safe to call more than once."""
        if self.process.pid is not None and self.process.exitcode is None:
            self.process.terminate()
            self.process.join(timeout=5)
            if self.process.exitcode is None:
                self.process.kill()
                self.process.join()
        self.conn.close()
        if self.shm is not None:
            self.ring = None  # the ring's view must go before the memory can be closed
            try:
                self.shm.close()
            except BufferError:
                pass  # a view is still held (a child that never started keeps its arguments): unmapped with it
            self.shm.unlink()
            self.shm = None


def _decode_into_ring(video: VideoFile, ring: np.ndarray, free, conn, run: int, reader: int) -> None:  # noqa: ANN001
    """The child: frames into the ring, their times and the ending down `conn`; it gives up when its reader (pid
    `reader`) is gone without ending it (killed)."""
    times: list[float] = []  # of the frames in the ring not yet announced
    k, last = 0, None
    try:
        try:
            for t, frame in video.frames():
                while not free.acquire(timeout=1.0):
                    if os.getppid() != reader:
                        return
                ring[k % len(ring)] = frame
                k, last = k + 1, t
                times.append(t)
                if len(times) == run:
                    conn.send(("frames", times))
                    times = []
            ending: tuple[str, object] = ("end", video.truncated)
        except Exception as e:  # handed to the reader, after the frames decoded before it
            ending = ("error", _readable(e, video.path, last))
        if times:
            conn.send(("frames", times))
        conn.send(ending)
    except (KeyboardInterrupt, BrokenPipeError):
        pass  # Ctrl-C reaches the reader too, and a reader that left needs nothing more
    finally:
        conn.close()
        os._exit(0)  # nothing of the parent's (atexit handlers, buffered files) runs twice


def _readable(e: Exception, path: str, t: float | None) -> EdgeavError:
    """`e` as the reader raises it: an EdgeavError as it is, anything else as one line naming the file."""
    if isinstance(e, EdgeavError):
        return e
    where = f" after {t:.2f}s" if t is not None else ""
    return EdgeavError(
        f"decoding {path} failed{where}: {type(e).__name__}: {_short(e)}",
        "re-encode the file, e.g. ffmpeg -i IN -c:v libx264 OUT.mp4",
    )
