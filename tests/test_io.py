"""Media I/O: sync of audio and video, every bundled clip decodes, bad input gives one clear line."""

import numpy as np
import pytest

from edgeav import EdgeavError
from edgeav.io import VideoFile, open_source, read_audio

from conftest import ASSETS
from media import make_audio, make_clip


def _click_time(v: VideoFile, t0=0.0, t1=3.0):
    x = v.audio(t0, t1)
    return t0 + np.argmax(np.abs(x)) / v.sample_rate


@pytest.mark.parametrize("name,audio_start", [("sync.mp4", 0.0), ("late.mp4", 0.5), ("late.mkv", 0.5)])
def test_click_lands_in_the_audio_window_of_its_frame(tmp_path, name, audio_start):
    path = make_clip(tmp_path / name, flash_frame=30, click_t=1.2, audio_start=audio_start)
    v = VideoFile(path, fps=25)
    bright = [t for t, img in v.frames() if img.mean() > 100]
    assert bright == [pytest.approx(1.2)]
    frame_t = bright[0]
    # the audio of that frame's span (one 40 ms frame) holds the click; the frame before it is quiet
    assert np.abs(v.audio(frame_t, frame_t + 0.04)).max() > 0.5
    assert np.abs(v.audio(frame_t - 0.4, frame_t - 0.01)).max() < 0.1
    assert abs(_click_time(v) - 1.2) < 1 / 25  # within one audio/video frame
    if audio_start:
        assert np.abs(v.audio(0.0, 0.3)).max() == 0.0  # before the audio stream starts: silence


def test_audio_windows_stream_and_seek_back(tmp_path):
    path = make_clip(tmp_path / "c.mp4", seconds=6.0, click_t=4.5)
    v = VideoFile(path)
    later = [v.audio(s, s + 1.0) for s in np.arange(0, 5, 0.5)]  # forward, overlapping windows
    assert all(len(w) == 16000 for w in later)
    assert np.abs(later[8]).max() > 0.5 and np.abs(later[0]).max() < 0.1  # window [4, 5) has the click
    assert abs(_click_time(v, 4.0, 5.0) - 4.5) < 0.04
    assert abs(_click_time(v, 0.0, 6.0) - 4.5) < 0.04  # going back re-seeks
    assert len(v._audio.buf) < 16000 * 8  # buffer stays bounded


def test_frames_at_requested_fps_size_and_seek(tmp_path):
    path = make_clip(tmp_path / "f.mp4", seconds=2.0)
    v = VideoFile(path, fps=5, size=(32, 24))
    got = list(v.frames())
    assert [round(t, 3) for t, _ in got] == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.4, 1.6, 1.8]
    assert got[0][1].shape == (24, 32, 3) and got[0][1].dtype == np.uint8
    assert v.frame_at(1.2).mean() > 100  # the flash frame, reached by seeking


@pytest.mark.parametrize("rate,channels", [(8000, 2), (48000, 1), (44100, 2)])
def test_audio_files_any_rate_and_channels(tmp_path, rate, channels):
    p = make_audio(tmp_path / "tone.wav", seconds=1.0, rate=rate, channels=channels)
    x = read_audio(p, 16000)
    assert abs(len(x) - 16000) <= 64 and x.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(x[:16000]))
    assert abs(np.argmax(spectrum) - 440) <= 2  # 440 Hz survives resampling


def test_other_containers_and_codecs(tmp_path):
    for name in ("x.mkv", "x.mov", "x.avi"):
        v = VideoFile(
            make_clip(tmp_path / name, seconds=1.0, click_t=0.5, codec="aac" if name != "x.avi" else "pcm_s16le"),
            fps=10,
        )
        ts = [t for t, _ in v.frames()]
        # 1 s of video at 10 fps; the AVI fixture's mpeg4 encoder adds frames to 1.04 s, so one more grid point
        assert ts == pytest.approx([k / 10 for k in range(len(ts))]) and len(ts) in (10, 11 if name == "x.avi" else 10)
        assert abs(_click_time(v, 0, 1) - 0.5) < 0.04


def test_every_bundled_clip_decodes():
    clips = sorted((ASSETS / "clips").glob("*.mp4"))
    assert clips, "the repo must ship at least one clip"
    for c in clips:
        v = VideoFile(c, fps=5, size=(128, 96))
        frames = list(v.frames())
        assert len(frames) >= 5 * v.duration - 1
        assert np.abs(v.audio(0, v.duration)).max() > 0.01


def _one_line(exc: EdgeavError, path) -> str:
    msg = str(exc)
    assert "\n" not in msg and str(path) in msg
    return msg


def test_bad_inputs_give_one_clear_line(tmp_path):
    good = make_clip(tmp_path / "good.mp4", seconds=2.0)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n")
    missing = tmp_path / "missing.mp4"
    for p in (empty, text, missing):
        with pytest.raises(EdgeavError) as e:
            VideoFile(p)
        _one_line(e.value, p)
    # truncated: either a clear error, or the decodable part (documented: keep what decodes, flag `truncated`)
    try:
        v = VideoFile(truncated, fps=25)
        n = len(list(v.frames()))
        assert n < 50
    except EdgeavError as e:
        _one_line(e, truncated)
    silent = make_clip(tmp_path / "silent.mp4", seconds=1.0, audio_rate=None)
    v = VideoFile(silent, fps=5)
    assert not v.info.has_audio and len(list(v.frames())) == 5  # video alone is fine for recommending
    with pytest.raises(EdgeavError) as e:
        v.audio(0, 1)
    assert "no audio track" in _one_line(e.value, silent)
    with pytest.raises(EdgeavError) as e:
        VideoFile(silent, require_audio=True)
    _one_line(e.value, silent)
    with pytest.raises(EdgeavError) as e:
        read_audio(text)
    _one_line(e.value, text)
    with pytest.raises(EdgeavError) as e:
        open_source(str(missing), fps=2)
    _one_line(e.value, missing)


def test_sources_accept_the_uri_forms(tmp_path, monkeypatch):
    from edgeav.io import decode_process
    from edgeav.io.sources import split_source, warm_up_decoder

    p = make_clip(tmp_path / "u.mp4", seconds=1.0)
    assert split_source(f"file://{p}") == ("", str(p)) and split_source("0") == ("", "0")
    assert split_source("v4l2://2") == ("v4l2", "2") and split_source("RTSP://cam/x") == ("rtsp", "cam/x")
    # a decoder process is warmed for what open_source reads from a file ahead, and for nothing else
    started = []
    monkeypatch.setattr(decode_process, "warm_up", lambda: started.append(1))
    for s in (str(p), f"file://{p}", "0", "/dev/video0", "rtsp://cam/x", str(tmp_path / "missing.mp4")):
        warm_up_decoder(s)
    warm_up_decoder(str(p), realtime=True)
    assert len(started) == 2
    for s in (str(p), f"file://{p}"):
        src = open_source(s, fps=5, size=(32, 24))
        assert len(list(src)) == 5
    with pytest.raises(EdgeavError):
        open_source("gopher://x", fps=5)
    with pytest.raises(EdgeavError) as e:
        open_source("/dev/video99", fps=5)
    assert "/dev/video99" in str(e.value)


def _left_behind(src) -> list:
    """What a file source's decoder left running or allocated: decoder threads, a live child, its ring."""
    import threading

    left = [t.name for t in threading.enumerate() if t.name == "edgeav-decode"]
    child = getattr(src, "last_child", None)
    if child is not None:
        left += ["process"] * child.running() + ["ring"] * (child.memory is not None)
    return left


def _running(pid: int) -> bool:
    """Whether process `pid` exists and has not ended (a zombie no one reaps has ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("decoder", ["thread", "process"])
def test_a_file_read_ahead_gives_the_decoded_frames_and_stops_with_its_reader(tmp_path, decoder):
    from edgeav.io import decode_process
    from edgeav.io.sources import FileSource

    if decoder == "process" and not decode_process.available():
        pytest.skip("the decoder process needs Linux")
    p = make_clip(tmp_path / "a.mp4", seconds=2.0)
    direct = list(VideoFile(p, fps=25, size=(32, 24)).frames())
    src = FileSource(str(p), 25, (32, 24), decoder=decoder)
    ahead = list(src)
    assert [t for t, _ in ahead] == [t for t, _ in direct] and len(ahead) == 50
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(ahead, direct))
    assert not _left_behind(src)
    # a reader that leaves early (--max-seconds, Ctrl-C) leaves nothing behind: by closing the source, or the loop
    for close in (lambda it: src.close(), lambda it: it.close()):
        it = iter(src)
        next(it)
        close(it)
        assert not _left_behind(src)


def test_a_decoding_thread_hands_its_error_over_after_the_frames_before_it():
    from edgeav.io.sources import _decoded_ahead

    def broken():
        yield 1
        raise EdgeavError("frame 2 is damaged", "re-encode the file")

    got = []
    with pytest.raises(EdgeavError, match="frame 2"):
        for x in _decoded_ahead(broken(), 4):
            got.append(x)
    assert got == [1]


@pytest.mark.parametrize("failure", ["edgeav", "other", "killed"])
def test_a_decoder_process_hands_its_failure_over_after_the_frames_before_it(tmp_path, failure):
    """The child's errors reach the reader as one line naming the file, after every frame decoded before them; a
    child that dies (killed) reads as its exit code; either way nothing is left running."""
    from edgeav.io import decode_process
    from edgeav.io.sources import FileSource

    from media import FailingVideo

    if not decode_process.available():
        pytest.skip("the decoder process needs Linux")
    p = make_clip(tmp_path / "a.mp4", seconds=1.0)
    src = FileSource(str(p), 25, (32, 24), decoder="process")
    src.video = FailingVideo.like(src.video, failure, at=11)  # the child unpickles it: the test's module, by path
    got = []
    expected = {"edgeav": "frame 11 is damaged", "other": "failed after 0.40s: ValueError: bad packet"}
    with pytest.raises(EdgeavError) as e:
        for t, _ in src:
            got.append(t)
    if failure == "killed":
        assert "decoder process ended (exit code -9)" in str(e.value) and len(got) <= 11
    else:
        assert got == pytest.approx([i / 25 for i in range(11)]) and expected[failure] in str(e.value)
        assert e.value.fix == "re-encode the file" or "ffmpeg" in e.value.fix
    if failure != "edgeav":
        _one_line(e.value, p)
    assert not _left_behind(src)


def test_a_decoder_process_is_no_fork_of_its_reader_and_ends_with_it(tmp_path):
    """The child is a fresh interpreter: none of the reader's modules or threads (a fork would copy the reader's
    heap and only its forking thread, and hang on what the rest held). One started ahead (warm_up) waits for the
    next reader; a reader that dies ends its child."""
    import subprocess
    import sys
    import textwrap
    import time

    from edgeav.io import decode_process
    from edgeav.io.sources import FileSource

    if not decode_process.available():
        pytest.skip("the decoder process needs Linux")
    p = make_clip(tmp_path / "a.mp4", seconds=1.0)
    decode_process.warm_up()
    waiting = list(decode_process._waiting)
    src = FileSource(str(p), 25, (32, 24), decoder="process")
    it = iter(src)
    next(it)
    child = src.last_child.child
    assert waiting == [child] and not decode_process._waiting  # the one started ahead took the job
    with open(f"/proc/{child.process.pid}/cmdline", "rb") as f:
        assert b"serve(" in f.read()  # exec'd, not forked: its own command line
    import torch  # noqa: F401  (mapped into the reader: a forked child would have it too)

    def libraries(pid):
        with open(f"/proc/{pid}/maps") as f:
            return f.read()

    assert "libtorch" in libraries("self") and "libtorch" not in libraries(child.process.pid)
    it.close()
    assert not _left_behind(src)
    # a reader killed mid-file: its child, waiting for slots, reads end-of-file and ends (no orphan decoding on)
    long = make_clip(tmp_path / "long.mp4", seconds=5.0)
    code = textwrap.dedent(f"""
        import os
        from edgeav.io.sources import FileSource
        src = FileSource({str(long)!r}, 25, (32, 24), decoder="process")
        it = iter(src)
        next(it)
        print(src.last_child.child.process.pid, flush=True)
        os.kill(os.getpid(), 9)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    pid = int(out.split()[0])
    for _ in range(200):
        if not _running(pid):
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"decoder process {pid} outlived its killed reader")


def test_frames_scaled_by_one_scaler_equal_scaling_each_frame_alone():
    """A pass keeps one scaler for all its frames (setting one up per frame cost more than decoding) and scales on
    one thread: the pixels are those of PyAV's default, scaling each decoded frame on its own with libswscale's
    threads, on every thread count of the decoder, scaled or at the native size."""
    import av

    clip = ASSETS / "clips" / "solarwolf-s11_10-40.mp4"
    with av.open(str(clip)) as c:
        frames = list(c.decode(video=0))
        scaled = [f.to_ndarray(format="rgb24", width=128, height=96, interpolation="AREA") for f in frames]
        native = [f.to_ndarray(format="rgb24") for f in frames]
    for size, alone in (((128, 96), scaled), (None, native)):
        for threads in (0, 1):
            got = [img for _, img in VideoFile(clip, fps=None, size=size, threads=threads).frames()]
            assert len(got) == len(alone) and all(np.array_equal(a, b) for a, b in zip(got, alone))


def test_decoding_without_the_deblocking_filter_gives_the_same_frames_within_a_few_levels(monkeypatch):
    """deblock=False (edgeav run's default) skips the codec's loop filter: the same frames at the same times, a few
    levels apart at block edges, by the decoder process as by the reader; deblock=True is the exact decode. A run
    hands its --deblock choice to the source it opens."""
    from edgeav.io import decode_process
    from edgeav.io.sources import FileSource

    clip = ASSETS / "clips" / "solarwolf-s11_10-40.mp4"
    exact = list(VideoFile(clip, fps=25, size=(128, 96)).frames(0, 4))
    skipped = list(VideoFile(clip, fps=25, size=(128, 96), deblock=False).frames(0, 4))
    assert [t for t, _ in skipped] == [t for t, _ in exact] and len(exact) == 100
    diff = np.abs(np.stack([f for _, f in skipped]).astype(int) - np.stack([f for _, f in exact]))
    assert diff.max() > 0  # the filter was skipped: the solarwolf clip's H.264 has one to skip
    assert diff.mean() < 1.0 and np.percentile(diff, 99) <= 8
    if decode_process.available():
        ahead = list(FileSource(str(clip), 25, (128, 96), deblock=False, decoder="process"))[:100]
        assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(ahead, skipped))

    import edgeav.io
    from edgeav.pipeline import RunConfig, run

    asked = []
    opened = edgeav.io.open_source

    def spy(*args):
        asked.append(args[5])  # deblock
        return opened(*args)

    monkeypatch.setattr(edgeav.io, "open_source", spy)
    for deblock in (True, False):
        run(RunConfig(str(clip), quiet=True, events_only=True, max_seconds=0.5, deblock=deblock))
    assert asked == [True, False]


def test_a_file_read_as_yuv420_planes_stands_for_its_rgb_frames_and_other_streams_read_as_rgb(tmp_path):
    """yuv420=True hands on the scaler's YUV 4:2:0 planes, (3H/2, W), at the same times as the RGB frames, by the
    decoder process as by the reader; the RGB they stand for is within a few levels of the scaler's own. A stream
    that is not 4:2:0 or not BT.601 is read as RGB, saying why."""
    from edgeav.io import decode_process
    from edgeav.io.sources import FileSource
    from edgeav.yuv import yuv420_to_rgb

    clip = ASSETS / "clips" / "solarwolf-s11_10-40.mp4"
    rgb = list(VideoFile(clip, fps=25, size=(128, 96), deblock=False).frames(0, 4))
    video = VideoFile(clip, fps=25, size=(128, 96), deblock=False, yuv420=True)
    assert video.pixels == "nv12" and video.frame_shape == (144, 128)
    planes = list(video.frames(0, 4))
    assert [t for t, _ in planes] == [t for t, _ in rgb] and planes[0][1].shape == (144, 128)
    diff = np.abs(yuv420_to_rgb(np.stack([f for _, f in planes])).astype(int) - np.stack([f for _, f in rgb]))
    assert diff.mean() < 3 and np.percentile(diff, 90) <= 6
    if decode_process.available():
        ahead = list(FileSource(str(clip), 25, (128, 96), deblock=False, decoder="process", yuv420=True))[:100]
        assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(ahead, planes))
    for clip, why in (
        (make_clip(tmp_path / "444.mp4", pix_fmt="yuv444p"), "yuv444p"),
        (make_clip(tmp_path / "709.mp4", colorspace=1), "bt709"),
    ):
        video = VideoFile(clip, fps=25, size=(64, 48), yuv420=True)
        assert video.pixels == "rgb24" and why in video.pixels_note
        assert next(iter(video.frames()))[1].shape == (48, 64, 3)


@pytest.mark.parametrize("lack", ["shared memory", "an interpreter that starts"])
def test_without_a_decoder_process_a_file_is_decoded_on_a_thread_unless_a_process_was_asked_for(
    tmp_path, monkeypatch, lack
):
    import sys

    from edgeav.io import decode_process
    from edgeav.io.sources import FileSource

    if not decode_process.available():
        pytest.skip("the decoder process needs Linux")
    p = make_clip(tmp_path / "a.mp4", seconds=1.0)

    def no_shm(*a, **k):
        raise OSError(28, "No space left on device")

    if lack == "shared memory":
        monkeypatch.setattr(decode_process, "ring_memory", no_shm)
    else:
        monkeypatch.setattr(sys, "executable", "/bin/false")  # starts, and exits before it is ready
        monkeypatch.setattr(decode_process, "_waiting", [])
    assert len(list(FileSource(str(p), 25, (32, 24)))) == 25
    with pytest.raises(EdgeavError, match="cannot start a decoder process") as e:
        list(FileSource(str(p), 25, (32, 24), decoder="process"))
    _one_line(e.value, p)
