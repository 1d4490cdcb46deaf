"""Synthetic media made with PyAV for tests: known events at known times."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeav.io import VideoFile


def make_clip(
    path: Path,
    seconds: float = 3.0,
    fps: int = 25,
    size=(64, 48),
    flash_frame: int | None = 30,
    click_t: float | None = 1.2,
    audio_rate: int | None = 16000,
    audio_start: float = 0.0,
    channels: int = 1,
    codec: str = "aac",
    soundtrack: np.ndarray | None = None,
    pix_fmt: str = "yuv420p",
    colorspace: int | None = None,
) -> Path:
    """A clip whose frame `flash_frame` is white (others dark) and whose audio has a click at `click_t` seconds
    (absolute time); the audio stream may start late (`audio_start`) or be left out (`audio_rate=None`). A given
    `soundtrack` (mono, at `audio_rate`) replaces the noise and click."""
    import av

    w, h = size
    with av.open(str(path), "w") as c:
        # AVI cannot carry B-frame timestamps: real AVIs hold MPEG-4 Part 2 (or MJPEG), so use that there
        vcodec = {".webm": "libvpx-vp9", ".avi": "mpeg4"}.get(path.suffix, "libx264")
        vs = c.add_stream(vcodec, rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, pix_fmt
        if colorspace is not None:  # ffmpeg's AVColorSpace, tagged on the stream (1: BT.709)
            vs.codec_context.colorspace = colorspace
        vs.options = {"preset": "ultrafast"} if vcodec == "libx264" else {}
        if audio_rate:
            layout = "mono" if channels == 1 else "stereo"
            a = c.add_stream(codec, rate=audio_rate, layout=layout)
            n = int(round((seconds - audio_start) * audio_rate))
            sig = (0.001 * np.random.default_rng(0).standard_normal(n)).astype(np.float32)
            if click_t is not None:
                i = int(round((click_t - audio_start) * audio_rate))
                sig[i : i + int(0.01 * audio_rate)] = 0.9
            if soundtrack is not None:
                sig = np.zeros(n, np.float32)
                sig[: min(n, len(soundtrack))] = soundtrack[:n]
        for k in range(int(seconds * fps)):
            img = np.full((h, w, 3), 255 if k == flash_frame else 20, np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = k
            frame.time_base = __import__("fractions").Fraction(1, fps)
            for p in vs.encode(frame):
                c.mux(p)
        if audio_rate:
            fs = a.codec_context.frame_size or 1024
            for i in range(0, n, fs):
                chunk = sig[i : i + fs]
                if len(chunk) < fs:
                    chunk = np.pad(chunk, (0, fs - len(chunk)))
                arr = np.repeat(chunk[None, :], channels, 0)
                fmt = a.codec_context.format.name
                if fmt.startswith("s32"):
                    arr = (arr * (2**31 - 1)).astype(np.int32)
                elif fmt.startswith("s16"):
                    arr = (arr * 32767).astype(np.int16)
                af = av.AudioFrame.from_ndarray(
                    arr if fmt.endswith("p") else arr.T.reshape(1, -1).copy(), format=fmt, layout=layout
                )
                af.sample_rate = audio_rate
                af.pts = int(round(audio_start * audio_rate)) + i
                af.time_base = __import__("fractions").Fraction(1, audio_rate)
                for p in a.encode(af):
                    c.mux(p)
            for p in a.encode(None):
                c.mux(p)
        for p in vs.encode(None):
            c.mux(p)
    return path


def make_audio(path: Path, seconds: float = 1.0, rate: int = 16000, channels: int = 1, freq: float = 440.0) -> Path:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    x = 0.5 * np.sin(2 * np.pi * freq * t).astype(np.float32)
    sf.write(str(path), np.repeat(x[:, None], channels, 1), rate)
    return path


class FailingVideo(VideoFile):
    """A VideoFile whose frames fail at frame `at`: an EdgeavError ("edgeav"), another error ("other"), or the
    process decoding it killed ("killed"). A decoder process unpickles it from this module, as the test imports it."""

    @classmethod
    def like(cls, video: VideoFile, failure: str, at: int) -> FailingVideo:
        failing = cls.__new__(cls)
        failing.__dict__.update(video.__dict__, failure=failure, at=at)
        return failing

    def frames(self, *args, **kwargs):
        import os
        import signal

        from edgeav import EdgeavError

        for i, item in enumerate(super().frames(*args, **kwargs)):
            if i == self.at:
                if self.failure == "edgeav":
                    raise EdgeavError(f"frame {i} is damaged", "re-encode the file")
                if self.failure == "other":
                    raise ValueError("bad\npacket")
                os.kill(os.getpid(), signal.SIGKILL)
            yield item
