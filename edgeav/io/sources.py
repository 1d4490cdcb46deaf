"""One iterator of timestamped RGB frames over files, cameras and network streams.

Live sources run a capture thread with a latest-frame policy: the consumer always gets the newest frame and
every frame that was overwritten before being read is counted as dropped — a slow consumer never builds a queue.
"""

from __future__ import annotations

import queue
import re
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np

from edgeav.errors import EdgeavError
from edgeav.io import decode_process
from edgeav.io.video import VideoFile


class FrameSource:
    """Base: iterate `(t_seconds, rgb_uint8)`; `stats` reports captured / delivered / dropped / reconnects."""

    live = False

    def __init__(self) -> None:
        self.stats = {"captured": 0, "delivered": 0, "dropped": 0, "reconnects": 0}

    def __iter__(self) -> Iterator[tuple[float, np.ndarray]]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class FileSource(FrameSource):
    """A video file at a fixed fps; as fast as possible, or paced to the wall clock with `realtime`.

    As fast as possible, frames are decoded ahead of the consumer, so decoding one frame overlaps the model's work
    on the one before: by a child process on Linux (`edgeav.io.decode_process`: a decoding thread would wait on the
    consumer's GIL), else by a thread (`decoder="thread"` asks for it anywhere). Paced, a frame is decoded when due.
    """

    AHEAD = 64  # frames decoded ahead of the consumer: ~2.6 s at 25 fps, 2.4 MB at 128×96

    def __init__(
        self,
        path: str,
        fps: float,
        size: tuple[int, int] | None,
        realtime: bool = False,
        threads: int = 0,
        decoder: str = "auto",
        deblock: bool = True,
        yuv420: bool = False,
    ) -> None:
        super().__init__()
        if decoder not in ("auto", "process", "thread"):
            raise EdgeavError(f"unknown decoder {decoder!r}", "use auto, process or thread")
        if decoder == "process" and not decode_process.available():
            raise EdgeavError(f"no decoder process on {sys.platform}", "use decoder='thread' (or auto)")
        self.video = VideoFile(path, fps=fps, size=size, threads=threads, deblock=deblock, yuv420=yuv420)
        self.realtime = realtime
        self.decoder = decoder  # as asked: "auto" decodes in a process where there is one
        self.last_child = None  # the latest decoder process (a ChildDecoder), ended by close()
        self._reading: Iterator | None = None  # the latest pass's frames, closed by close()

    def __iter__(self):
        try:
            for t, img in self._frames():
                self.stats["captured"] += 1
                self.stats["delivered"] += 1
                yield t, img
        finally:
            self.close()

    def _frames(self) -> Iterator[tuple[float, np.ndarray]]:
        self.close()
        if self.realtime:
            self._reading = self._paced()
        elif self.decoder != "thread" and decode_process.available() and self._start_child():
            self._reading = iter(self.last_child)
        else:
            self._reading = _decoded_ahead(self.video.frames(), self.AHEAD)
        return self._reading

    def _start_child(self) -> bool:
        """Start a decoder process; False when the system cannot give one (no shared memory, no processes left) and
        the reader asked for none in particular: a thread decodes then, the same frames."""
        try:
            self.last_child = decode_process.ChildDecoder(self.video, self.AHEAD, HANDOFF)
        except OSError as e:
            if self.decoder == "process":
                raise EdgeavError(
                    f"cannot start a decoder process for {self.video.path}: {e}", "use decoder='thread'"
                ) from None
            return False
        return True

    def close(self) -> None:
        if self._reading is not None:
            self._reading.close()  # a decoding thread stops with its generator
        if self.last_child is not None:
            self.last_child.close()  # a child whose frames were never asked for is ended too

    def _paced(self):
        t_start = time.perf_counter()
        for t, img in self.video.frames():
            wait = t - (time.perf_counter() - t_start)
            if wait > 0:
                time.sleep(wait)
            yield t, img


_END = object()


HANDOFF = 8  # frames handed to the reader at a time: a queue handoff per frame costs a GIL round trip each


def _decoded_ahead(frames: Iterator, ahead: int) -> Iterator:
    """`frames`, produced on a thread up to `ahead` items before they are read (in runs of `HANDOFF`); its errors
    re-raised here, after the items decoded before them. Leaving the loop early stops the thread."""
    q: queue.Queue = queue.Queue(maxsize=max(1, ahead // HANDOFF))
    stop = threading.Event()

    def put(item: object) -> bool:
        """Hand `item` over, waiting while the queue is full; False when the reader left."""
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        run: list = []
        try:
            for item in frames:
                run.append(item)
                if len(run) < HANDOFF:
                    continue
                if not put(run):
                    frames.close()
                    return
                run = []
            if not run or put(run):
                put(_END)
        except BaseException as e:  # handed to the reader, which raises it
            if not run or put(run):
                put(e)

    worker = threading.Thread(target=produce, name="edgeav-decode", daemon=True)
    worker.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield from item
    finally:
        stop.set()
        worker.join(timeout=5)


class LiveSource(FrameSource):
    """OpenCV capture (camera index, /dev/videoN, rtsp/http URL, GStreamer pipeline) on a background thread."""

    live = True

    def __init__(
        self,
        uri: str | int,
        size: tuple[int, int] | None,
        reconnect: int = 3,
        open_timeout_s: float = 10.0,
        api_preference: int | None = None,
    ) -> None:
        super().__init__()
        self.uri, self.size, self.reconnect = uri, size, reconnect
        self.open_timeout_s, self.api = open_timeout_s, api_preference
        self._lock = threading.Condition()
        self._latest: tuple[float, np.ndarray] | None = None
        self._fresh = False
        self._stop = threading.Event()
        self._ended = False
        self._error: str | None = None
        self._cap = self._open()
        self._t0 = time.perf_counter()
        self.clock, self._last_pos, self._pos_offset = "wall", 0.0, 0.0
        self._thread = threading.Thread(target=self._run, name="edgeav-capture", daemon=True)
        self._thread.start()

    def _open(self):
        import cv2

        cap = cv2.VideoCapture(self.uri) if self.api is None else cv2.VideoCapture(self.uri, self.api)
        if not cap.isOpened():
            cap.release()
            raise EdgeavError(
                f"cannot open video source {self.uri!r}",
                "check the camera index/device is present or the stream URL is reachable",
            )
        return cap

    def _run(self) -> None:
        import cv2

        failures = 0
        while not self._stop.is_set():
            ok, bgr = self._cap.read()
            if not ok:
                # a network stream that drops is reopened; a camera that disappears ends the run cleanly
                failures += 1
                if failures > self.reconnect:
                    self._error = f"source {self.uri!r} stopped delivering frames"
                    break
                self._cap.release()
                time.sleep(min(0.5 * failures, 2.0))
                try:
                    self._cap = self._open()
                    self.stats["reconnects"] += 1
                except EdgeavError:
                    continue
                continue
            failures = 0
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            if self.size is not None:
                rgb = cv2.resize(rgb, self.size, interpolation=cv2.INTER_AREA)
            t = self._timestamp(cv2)
            with self._lock:
                self.stats["captured"] += 1
                if self._fresh:
                    self.stats["dropped"] += 1  # the previous frame was never consumed
                self._latest, self._fresh = (t, rgb), True
                self._lock.notify_all()
        with self._lock:
            self._ended = True
            self._lock.notify_all()

    def _timestamp(self, cv2: ModuleType) -> float:
        """The stream's own time when the backend reports increasing timestamps (files over HTTP, RTSP), so windows
        follow the content; the wall clock otherwise (cameras without timestamps)."""
        wall = time.perf_counter() - self._t0
        pos = self._cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        if pos > 0 and pos > self._last_pos:
            self._last_pos = pos
            self.clock = "stream"
            return pos + self._pos_offset
        if self.clock == "stream" and pos <= self._last_pos and self.stats["reconnects"]:
            self._pos_offset += self._last_pos  # a reopened stream restarts its clock: continue after the old one
            self._last_pos = 0.0
        return max(wall, self._last_pos + self._pos_offset)

    def __iter__(self):
        while True:
            with self._lock:
                while not self._fresh and not self._ended:
                    self._lock.wait(timeout=0.5)
                if not self._fresh and self._ended:
                    return
                item, self._fresh = self._latest, False
                self.stats["delivered"] += 1
            yield item

    @property
    def ended_reason(self) -> str | None:
        return self._error

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._cap.release()


_URI_RE = re.compile(r"^(?P<scheme>[a-z0-9+]+)://(?P<rest>.*)$", re.I)


def split_source(source: str) -> tuple[str, str]:
    """(scheme, rest) of SOURCE as users write it: a path, `file://PATH`, a camera index or /dev/videoN have
    scheme "" (and rest the path, index or device); `v4l2://N` is ("v4l2", "N")."""
    m = _URI_RE.match(str(source))
    scheme = m.group("scheme").lower() if m else ""
    return ("" if scheme == "file" else scheme), (m.group("rest") if m else str(source))


def is_camera(rest: str) -> bool:
    """Whether a scheme-less source names a camera (an index, /dev/videoN) rather than a file."""
    return rest.isdigit() or rest.startswith("/dev/video")


def warm_up_decoder(source: str, realtime: bool = False) -> None:
    """Start the decoder process a file `source` read ahead will take (`FileSource`), so that its start overlaps
    the caller's own (loading a model); nothing for cameras, streams and paced files."""
    scheme, rest = split_source(source)
    if not realtime and not scheme and not is_camera(rest) and Path(rest).is_file():
        decode_process.warm_up()


def open_source(
    source: str,
    fps: float,
    size: tuple[int, int] | None = None,
    realtime: bool = False,
    decode_threads: int = 0,
    deblock: bool = True,
    yuv420: bool = False,
) -> FrameSource:
    """Open SOURCE as users write it: a file, `file://`, a camera index `0`, `/dev/videoN`, `v4l2://N`,
    `csi://N` (GStreamer nvarguscamerasrc on Jetson), `rtsp://`, `http(s)://`. `decode_threads` bounds a file's
    decoder threads (0: as many as the codec takes); `deblock` False skips a file codec's loop filter; `yuv420`
    asks a file for YUV 4:2:0 planes where its stream allows (`VideoFile`; live sources give RGB)."""
    s = str(source)
    scheme, rest = split_source(s)
    if not scheme:
        if is_camera(rest):
            return LiveSource(int(rest) if rest.isdigit() else rest, size)
        if not Path(rest).exists():
            fix = "give a video file, a camera index (0), /dev/videoN or a URL"
            raise EdgeavError(f"source not found: {rest}", fix)
        return FileSource(rest, fps, size, realtime=realtime, threads=decode_threads, deblock=deblock, yuv420=yuv420)
    if scheme == "v4l2":
        return LiveSource(int(rest) if rest.isdigit() else rest, size)
    if scheme == "csi":
        import cv2

        sensor = rest or "0"
        pipeline = (
            f"nvarguscamerasrc sensor-id={sensor} ! video/x-raw(memory:NVMM),width=1280,height=720 ! "
            "nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! appsink drop=1"
        )
        if "GStreamer:                   YES" not in cv2.getBuildInformation():
            raise EdgeavError(
                f"{s}: this OpenCV has no GStreamer support",
                "on Jetson use the system OpenCV from JetPack (python3-opencv)",
            )
        return LiveSource(pipeline, size, api_preference=cv2.CAP_GSTREAMER)
    if scheme in ("rtsp", "rtsps", "http", "https", "rtmp", "udp", "tcp"):
        return LiveSource(s, size)
    raise EdgeavError(
        f"unknown source scheme {scheme!r} in {s!r}",
        "use a file path, file://, v4l2://, csi://, rtsp://, http(s):// or a camera index",
    )
