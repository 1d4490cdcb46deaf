"""Video files: frames on a fixed fps grid and the audio of any time span, in sync, in constant memory.

Time zero is the first video timestamp. Audio samples are placed by their own timestamps, so an audio stream
that starts later than the video (or uses another time base) still lines up: the span before it starts is silence.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import av

import os
from dataclasses import dataclass

import numpy as np

from edgeav.errors import EdgeavError
from edgeav.io._av import make_resampler, open_container, resample_frame

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".ts", ".flv")


@dataclass
class VideoInfo:
    path: str
    width: int
    height: int
    fps: float
    duration: float
    has_audio: bool
    audio_rate: int | None
    start_time: float  # first video timestamp in container seconds (our time zero)


def _stream_start(stream: av.stream.Stream | None) -> float | None:
    if stream.start_time is None or stream.time_base is None:
        return None
    return float(stream.start_time * stream.time_base)


# the colour spaces libswscale converts to RGB with BT.601's matrix (an unnamed one included): the one a reader of
# the YUV frames folds in (edgeav.yuv)
_YUV420_SPACES = {"unspecified", "bt470bg", "smpte170m"}
_COLOUR_SPACES = {"1": "bt709", "2": "unspecified", "4": "fcc", "5": "bt470bg", "6": "smpte170m", "9": "bt2020nc"}


class VideoFile:
    """Reads one video file. `size` is (width, height) of returned frames; `sample_rate` of returned audio;
    `threads` of the decoder (0: as many as the codec takes); `deblock` False skips the codec's deblocking
    (loop) filter: a sixth less decoding time for H.264, frames within a few levels of the exact ones.

    `yuv420` asks for frames as YUV 4:2:0 (NV12: edgeav.yuv), (3H/2, W) uint8, scaled by libswscale as RGB frames
    are, in two thirds of the scaler's time to RGB at 128×96. A stream that is not 4:2:0 in BT.601 (or unnamed)
    limited-range colour, or a size not divisible by 4, is read as RGB: `pixels` says which, `pixels_note` why."""

    def __init__(
        self,
        path: str | os.PathLike,
        fps: float | None = None,
        size: tuple[int, int] | None = None,
        sample_rate: int = 16000,
        require_audio: bool = False,
        threads: int = 0,
        deblock: bool = True,
        yuv420: bool = False,
    ) -> None:
        self.path = str(path)
        self.threads = threads  # decoder threads; 0: the codec's own choice (as many as the cores)
        self.deblock = deblock
        self.fps, self.size, self.sample_rate = fps, size, sample_rate
        with open_container(self.path, "video") as c:
            if not c.streams.video:
                raise EdgeavError(f"no video stream in {self.path}", "give a video file (mp4, mkv, webm, avi, mov)")
            vs = c.streams.video[0]
            a = c.streams.audio[0] if c.streams.audio else None
            rate = float(vs.average_rate or vs.guessed_rate or 25)
            start = _stream_start(vs) or 0.0
            dur = None
            if vs.duration is not None and vs.time_base is not None:
                dur = float(vs.duration * vs.time_base)
            elif c.duration is not None:
                dur = c.duration / 1e6
            if not dur and vs.frames:
                dur = vs.frames / rate
            self.info = VideoInfo(
                self.path,
                vs.codec_context.width,
                vs.codec_context.height,
                rate,
                float(dur or 0.0),
                a is not None,
                a.codec_context.sample_rate if a is not None else None,
                start,
            )
            self.pixels, self.pixels_note = "rgb24", ""
            if yuv420:
                self.pixels_note = _yuv420_obstacle(vs, size or (self.info.width, self.info.height))
                self.pixels = "rgb24" if self.pixels_note else "nv12"
        if require_audio and not self.info.has_audio:
            raise EdgeavError(f"no audio track in {self.path}", "training needs footage with sound; skip this file")
        self._audio: _AudioCursor | None = None
        self.truncated = False  # set when decoding stopped early on a damaged stream

    def __getstate__(self) -> dict:
        """What a decoder process gets: the reader's settings, without its open audio cursor (reopened on use)."""
        return {**self.__dict__, "_audio": None}

    @property
    def duration(self) -> float:
        return self.info.duration

    @property
    def frame_shape(self) -> tuple[int, ...]:
        """The shape of the frames `frames` yields."""
        w, h = self.size or (self.info.width, self.info.height)
        return (h * 3 // 2, w) if self.pixels == "nv12" else (h, w, 3)

    # ---- frames -------------------------------------------------------------------------------------------
    def frames(self, start: float = 0.0, end: float | None = None) -> Iterator[tuple[float, np.ndarray]]:
        """Yield (t, frame) for t = start, start+1/fps, ... < end: the frame on screen at time t, RGB uint8 H×W×3
        (NV12 (3H/2, W) where `pixels` says so)."""
        c = open_container(self.path, "video")
        try:
            vs = c.streams.video[0]
            vs.thread_type = "AUTO"
            if self.threads:
                vs.codec_context.thread_count = self.threads
            if not self.deblock:  # codecs without a loop filter to skip ignore the option
                vs.codec_context.options = {**vs.codec_context.options, "skip_loop_filter": "all"}
            zero = self.info.start_time
            if start > 0:
                c.seek(max(0, int((start + zero) / vs.time_base)), stream=vs, backward=True)
            step = None if self.fps is None else 1.0 / self.fps
            k, prev = 0, None
            rgb = self._converter()
            for frame in self._decode(c, vs):
                ft = (frame.time if frame.time is not None else 0.0) - zero
                if step is None:  # native rate
                    if ft >= start - 1e-6 and (end is None or ft < end):
                        yield ft, rgb(frame)
                    elif end is not None and ft >= end:
                        return
                    continue
                while True:
                    t = start + k * step
                    if end is not None and t >= end - 1e-9:
                        return
                    if t >= ft - 1e-3:
                        break
                    # frame `prev` is on screen at t (or, before the first frame, the first frame)
                    yield t, rgb(prev if prev is not None else frame)
                    k += 1
                prev = frame
            if prev is None or step is None:
                return
            last = (prev.time or 0.0) - zero + 1.0 / self.info.fps
            while True:
                t = start + k * step
                if t >= last - 1e-9 or (end is not None and t >= end - 1e-9):
                    return
                yield t, rgb(prev)
                k += 1
        finally:
            c.close()

    def _decode(self, c: av.container.InputContainer, vs: av.video.stream.VideoStream) -> Iterator[av.VideoFrame]:
        it = c.decode(vs)
        while True:
            try:
                frame = next(it)
            except StopIteration:
                return
            except Exception:  # damaged packet at the end of a truncated file: keep what decoded
                self.truncated = True
                return
            yield frame

    def _converter(self) -> Callable[[av.VideoFrame], np.ndarray]:
        """frame → RGB uint8 at `size`. One scaler serves every frame of a pass: `to_ndarray(width=...)` sets one up
        per frame, which costs more than decoding a 320×240 clip. It scales on the calling thread: libswscale's
        default, a thread per core, spends more on handing out the slices of a frame this small than it saves (a
        10-minute 320×240 file to 128×96 RGB: 2.55 s and 3.90 CPU-seconds on its threads, 2.05 s and 3.31 on one,
        the same pixels; benchmarks/results/event_latency.md), and the cores are the decoder's and the model's."""
        from av.video.reformatter import VideoReformatter

        scaler, fmt = VideoReformatter(), self.pixels
        if self.size is None:
            return lambda frame: scaler.reformat(frame, format=fmt, threads=1).to_ndarray()
        w, h = self.size
        return lambda frame: scaler.reformat(frame, w, h, fmt, interpolation="AREA", threads=1).to_ndarray()

    def frame_at(self, t: float) -> np.ndarray:
        """The frame on screen at time t (seeks)."""
        for _, img in self.frames(start=t, end=t + 1e-6 if self.fps else None):
            return img
        raise EdgeavError(
            f"no frame at {t:.2f}s in {self.path} (duration {self.duration:.2f}s)", "pick an earlier time"
        )

    # ---- audio --------------------------------------------------------------------------------------------
    def audio(self, t0: float, t1: float) -> np.ndarray:
        """Mono float32 samples of [t0, t1) at `sample_rate`; silence where the track has none."""
        if not self.info.has_audio:
            raise EdgeavError(f"no audio track in {self.path}", "use footage with sound for this step")
        if self._audio is None:
            self._audio = _AudioCursor(self.path, self.sample_rate, self.info.start_time)
        return self._audio.read(t0, t1)

    def close(self) -> None:
        if self._audio is not None:
            self._audio.close()
            self._audio = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _yuv420_obstacle(vs: av.video.stream.VideoStream, size: tuple[int, int]) -> str:
    """Why the stream's frames cannot be handed on as YUV 4:2:0 planes ("" when they can)."""
    cc = vs.codec_context
    fmt = cc.format.name if cc.format is not None else None
    space = str(getattr(cc, "colorspace", "unspecified")).rsplit(".", 1)[-1].lower()
    if fmt != "yuv420p":
        return f"its pixels are {fmt}, not yuv420p"
    if space.isdigit():  # PyAV versions that give the number: ffmpeg's AVColorSpace
        space = _COLOUR_SPACES.get(space, space)
    if space not in _YUV420_SPACES:
        return f"its colour space is {space}, not BT.601"
    if int(getattr(cc, "color_range", 0) or 0) == 2:  # AVCOL_RANGE_JPEG
        return "its colour range is full, not limited"
    if size[0] % 4 or size[1] % 4:
        return f"its frames are {size[0]}×{size[1]}, not a multiple of 4"
    return ""


class _AudioCursor:
    """Decodes forward through the audio track, keeping only a short buffer; seeks when asked to go back."""

    KEEP_S = 2.0  # history kept behind the last read, for overlapping windows

    def __init__(self, path: str, sample_rate: int, zero: float) -> None:
        self.path, self.sr, self.zero = path, sample_rate, zero
        self.c = None
        self._restart(0.0)

    def _restart(self, t: float) -> None:
        if self.c is not None:
            self.c.close()
        self.c = open_container(self.path, "video")
        self.stream = self.c.streams.audio[0]
        if t > 0.5:
            self.c.seek(max(0, int((t - 0.5 + self.zero) / self.stream.time_base)), stream=self.stream, backward=True)
        self.it = self.c.decode(self.stream)
        self.resampler = make_resampler(self.sr)
        self.buf = np.zeros(0, np.float32)
        self.buf_t0: float | None = None
        self.eof = False

    def _end(self) -> float:
        return (self.buf_t0 or 0.0) + len(self.buf) / self.sr

    def _pull(self) -> bool:
        try:
            frame = next(self.it)
        except StopIteration:
            self.eof = True
            return False
        except Exception:
            self.eof = True  # truncated stream: what decoded stays valid
            return False
        x = resample_frame(self.resampler, frame)
        ft = None if frame.time is None else frame.time - self.zero
        if self.buf_t0 is None:
            self.buf_t0 = ft if ft is not None else 0.0
            self.buf = x
            return True
        if ft is not None:
            gap = ft - self._end()
            if gap > 0.05:  # a hole in the track: fill it with silence so later samples keep their times
                self.buf = np.concatenate([self.buf, np.zeros(int(round(gap * self.sr)), np.float32)])
        self.buf = np.concatenate([self.buf, x])
        return True

    def read(self, t0: float, t1: float) -> np.ndarray:
        n = int(round((t1 - t0) * self.sr))
        if self.buf_t0 is not None and t0 < self.buf_t0 - 1e-3 and self.buf_t0 > 0.5:
            self._restart(t0)  # went back past the buffer
        elif self.buf_t0 is not None and t0 > self._end() + 5.0:
            self._restart(t0)  # far ahead: seeking beats decoding through
        while not self.eof and (self.buf_t0 is None or self._end() < t1):
            self._pull()
        out = np.zeros(n, np.float32)
        if self.buf_t0 is not None:
            i0 = int(round((t0 - self.buf_t0) * self.sr))
            s0, s1 = max(i0, 0), min(i0 + n, len(self.buf))
            if s1 > s0:
                out[s0 - i0 : s1 - i0] = self.buf[s0:s1]
            drop = int((t0 - self.KEEP_S - self.buf_t0) * self.sr)
            if drop > 0:  # constant memory: forget what lies well behind us
                self.buf = self.buf[drop:]
                self.buf_t0 += drop / self.sr
        return out

    def close(self) -> None:
        if self.c is not None:
            self.c.close()
            self.c = None
