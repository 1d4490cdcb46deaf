"""A file's frames decoded in a child process and read from a shared-memory ring.

A decoding thread beside the model waits on the GIL: PyAV gives it up and takes it back several times per frame,
and the model's Python between its torch calls holds it (research/results/decode_process.md: 45 s of footage
decodes in 0.26 s alone and 23.8 s beside a thread busy in Python). A child process has an interpreter of its own;
the reader only copies finished frames out of the ring.

The child is a fresh interpreter that imports PyAV and this module, never a fork of the reader: a fork copies the
reader's heap and only its forking thread, and a child forked from a reader with other threads (the model's, a
review page's server, a codec's slice threads behind a PyAV object the child's garbage collector then finalizes)
can wait forever on a lock or a thread that did not come with it. Its start (~0.2 s of imports) overlaps the
reader's own work: `warm_up` starts one ahead and the next `ChildDecoder` takes it.

Reader and child talk over a socket pair, one pickled message per packet. The reader sends the job (its sys.path,
the VideoFile, the ring's shape, the run length) with the ring's memory as a file descriptor. The child writes
frame k into slot k mod `slots` while it has free slots and sends the frames' times in runs of `run`; the reader
hands each run's slots back once it has copied them out. The child ends by sending "end" (with the file's
`truncated` flag) or the error it met, after the frames decoded before it. The reader ends the child and unmaps the
ring on every way out (the last frame, an error, a reader that stops early); a child whose reader is gone reads
end-of-file on its socket and ends.
"""

from __future__ import annotations

import atexit
import mmap
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from edgeav.errors import EdgeavError
from edgeav.io._av import _short
from edgeav.io.video import VideoFile

_PACKET = 1 << 16  # the largest message either side sends (a job, an error) is a few kB
_START_TIMEOUT = 60.0  # seconds for a child's imports, on the slowest machine under load
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])  # the folder holding this edgeav


def available() -> bool:
    """Linux, where it is tested: anonymous shared memory (memfd) and descriptors passed over a Unix socket."""
    return sys.platform.startswith("linux") and hasattr(os, "memfd_create")


def ring_memory(size: int) -> tuple[int, mmap.mmap]:
    """`size` bytes of anonymous memory: its descriptor (handed to the child, which maps it too) and the reader's
    map of it. The memory is gone once the descriptors are closed and the maps unmapped."""
    fd = os.memfd_create("edgeav-decode-ring", os.MFD_CLOEXEC)
    try:
        os.ftruncate(fd, size)
        return fd, mmap.mmap(fd, size)
    except BaseException:
        os.close(fd)
        raise


class _Child:
    """A decoder process, started and waiting for its job."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # the reader's edgeav, found first where it is not on the default path (a checkout); an installed one is
        main = (
            f"import sys; sys.path[:0] = [] if {_PACKAGE_ROOT!r} in sys.path else [{_PACKAGE_ROOT!r}]; "
            f"from {__name__} import serve; serve({theirs.fileno()})"
        )
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", main],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,  # never into the reader's output (a --jsonl on stdout)
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.sock = ours

    def ready(self) -> None:
        """Wait until the child has imported what it needs; OSError when it could not start."""
        self.sock.settimeout(_START_TIMEOUT)
        try:
            packet = self.sock.recv(_PACKET)
        finally:
            self.sock.settimeout(None)
        if packet != b"ready":
            self.process.wait(timeout=5)
            raise OSError(f"the decoder process did not start (exit code {self.process.returncode})")

    def end(self) -> None:
        """End the child; safe to call more than once. Its socket closed, it ends within a frame's decoding (a send
        fails, or its wait for slots or for the close reads end-of-file); one that does not is ended."""
        self.sock.close()
        for wait, stop in ((2, None), (5, self.process.terminate), (None, self.process.kill)):
            if self.process.poll() is not None:
                return
            if stop is not None:
                stop()
            try:
                self.process.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                pass


_waiting: list[_Child] = []  # children warm_up started, not yet given a job
_waiting_lock = threading.Lock()


@atexit.register
def _end_waiting() -> None:
    with _waiting_lock:
        while _waiting:
            _waiting.pop().end()


def warm_up() -> None:
    """Start a decoder process now, for the next ChildDecoder: its interpreter's start then overlaps the caller's
    own work (loading a model) instead of delaying the first frame. A process whose reader exits unused ends too."""
    if not available():
        return
    with _waiting_lock:
        if not _waiting:
            try:
                _waiting.append(_Child())
            except OSError:
                pass  # the ChildDecoder that needs it meets the same error and says so


def _take_child() -> _Child:
    with _waiting_lock:
        child = _waiting.pop() if _waiting else None
    if child is not None and child.process.poll() is not None:
        child.end()  # it ended unused (killed): its socket goes, a new one starts
        child = None
    if child is None:
        child = _Child()
    try:
        child.ready()
    except BaseException:
        child.end()
        raise
    return child


class ChildDecoder:
    """Iterate `(t, frame)` over `video.frames()`, decoded by a child process up to `slots` frames ahead."""

    def __init__(self, video: VideoFile, slots: int = 64, run: int = 8) -> None:
        self.video = video
        shape = (slots, *video.frame_shape)
        fd, self.memory = ring_memory(int(np.prod(shape)))
        self.ring: np.ndarray | None = np.frombuffer(self.memory, np.uint8).reshape(shape)
        self.child: _Child | None = None
        try:
            self.child = _take_child()
            job = pickle.dumps((sys.path, pickle.dumps((video, shape, run))))
            socket.send_fds(self.child.sock, [job], [fd])
        except BaseException:
            self.close()
            raise
        finally:
            os.close(fd)  # the child has its own now; the reader's map keeps the memory

    def running(self) -> bool:
        return self.child is not None and self.child.process.poll() is None

    def __iter__(self) -> Iterator[tuple[float, np.ndarray]]:
        ring, k = self.ring, 0
        try:
            while True:
                kind, payload = self._receive()
                if kind == "frames":
                    frames = [ring[(k + i) % len(ring)].copy() for i in range(len(payload))]
                    k += len(payload)
                    self._free(len(payload))  # copied out: the child may write those slots again
                    yield from zip(payload, frames)
                elif kind == "end":
                    self.video.truncated = payload
                    return
                else:
                    raise payload
        finally:
            del ring
            self.close()

    def _free(self, n: int) -> None:
        """Hand `n` slots back to the child; a child that has died is reported by the next receive."""
        try:
            self.child.sock.send(pickle.dumps(n))
        except OSError:
            pass

    def _receive(self) -> tuple[str, object]:
        try:
            packet = self.child.sock.recv(_PACKET)
        except OSError:
            packet = b""
        if packet:
            return pickle.loads(packet)
        try:
            self.child.process.wait(timeout=1)
        except subprocess.TimeoutExpired:
            pass
        raise EdgeavError(
            f"decoding {self.video.path} stopped: its decoder process ended (exit code {self.child.process.poll()})",
            "run again; if it repeats, re-encode the file, e.g. ffmpeg -i IN -c:v libx264 OUT.mp4",
        )

    def close(self) -> None:
        """End the child (`_Child.end`) and free the ring; safe to call more than once."""
        if self.child is not None:
            self.child.end()
        if self.memory is not None:
            self.ring = None  # the ring's view must go before the memory can be unmapped
            try:
                self.memory.close()
            except BufferError:
                pass  # a view of it is still held: the memory is unmapped with that view
            self.memory = None


def serve(fd: int) -> None:
    """The child's main: take the job from the socket `fd`, decode it into the ring, exit."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the reader's to handle; it ends this process
    sock = socket.socket(fileno=fd)
    try:
        import av  # noqa: F401  (imported before "ready": a reader started ahead waits for none of it)

        sock.send(b"ready")
        packet, fds, _, _ = socket.recv_fds(sock, _PACKET, 1)
        if not packet:
            return  # started ahead and never used
        path, job = pickle.loads(packet)
        sys.path[:] = path  # the reader's modules resolve here as there (a VideoFile subclass, say)
        try:
            video, shape, run = pickle.loads(job)
        except Exception as e:
            what = f"the decoder process could not read its job: {type(e).__name__}: {_short(e)}"
            _send(sock, ("error", EdgeavError(what, "run again with decoder='thread'")))
            _wait_for_reader_to_close(sock)
            return
        memory = mmap.mmap(fds[0], int(np.prod(shape)))
        os.close(fds[0])
        _decode_into_ring(video, np.frombuffer(memory, np.uint8).reshape(shape), sock, run)
        _wait_for_reader_to_close(sock)
    except (_ReaderGone, OSError):
        pass  # the reader is gone: nothing to hand over
    finally:
        sock.close()
        os._exit(0)  # no interpreter teardown: the ring's view and the codec go with the process


def _wait_for_reader_to_close(sock: socket.socket) -> None:
    """Read (and drop) the reader's last slot hand-backs until it closes its end: a Unix socket closed with unread
    data resets its peer's, and the reader would lose the frames and the ending still queued for it."""
    while sock.recv(_PACKET):
        pass


class _ReaderGone(Exception):
    """The reader's end of the socket is closed: it ended or was killed."""


def _send(sock: socket.socket, message: object) -> None:
    try:
        sock.send(pickle.dumps(message))
    except OSError:
        raise _ReaderGone from None


def _decode_into_ring(video: VideoFile, ring: np.ndarray, sock: socket.socket, run: int) -> None:
    """Frames into the ring while slots are free (the reader hands them back a run at a time), their times and the
    ending down `sock`. A reader that is gone ends it: end-of-file while waiting for slots, or a failed send."""
    times: list[float] = []  # of the frames in the ring not yet announced
    k, last, free = 0, None, len(ring)
    try:
        for t, frame in video.frames():
            while not free:
                packet = sock.recv(_PACKET)
                if not packet:
                    raise _ReaderGone
                free += pickle.loads(packet)
            ring[k % len(ring)] = frame
            k, last, free = k + 1, t, free - 1
            times.append(t)
            if len(times) == run:
                _send(sock, ("frames", times))
                times = []
        ending: tuple[str, object] = ("end", video.truncated)
    except _ReaderGone:
        raise
    except Exception as e:  # handed to the reader, after the frames decoded before it
        ending = ("error", _readable(e, video.path, last))
    if times:
        _send(sock, ("frames", times))
    _send(sock, ending)


def _readable(e: Exception, path: str, t: float | None) -> EdgeavError:
    """`e` as the reader raises it: an EdgeavError as it is, anything else as one line naming the file."""
    if isinstance(e, EdgeavError):
        return e
    where = f" after {t:.2f}s" if t is not None else ""
    return EdgeavError(
        f"decoding {path} failed{where}: {type(e).__name__}: {_short(e)}",
        "re-encode the file, e.g. ffmpeg -i IN -c:v libx264 OUT.mp4",
    )
