"""The shared front-ends against independent references."""

import numpy as np
import pytest

from edgeav.frontends import MelSpec, audio_window_frames, log_mel, preprocess_frames


def test_log_mel_matches_librosa():
    librosa = pytest.importorskip("librosa", reason="librosa (dev extra) is the independent reference")
    x = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    x[8000:8100] += 0.8
    ref = librosa.feature.melspectrogram(
        y=x,
        sr=16000,
        n_fft=400,
        hop_length=160,
        win_length=400,
        window="hann",
        center=True,
        pad_mode="constant",
        power=2.0,
        n_mels=64,
        fmin=0,
        fmax=8000,
        htk=False,
        norm="slaney",
    ).T
    ours = log_mel(x, MelSpec(), n_frames=100)
    assert ours.shape == (100, 64) == (audio_window_frames(), 64)
    np.testing.assert_allclose(ours, np.log(ref[:100] + 1e-6), atol=1e-3)


def test_log_mel_streaming_equals_whole():
    x = np.random.default_rng(1).standard_normal(48000).astype(np.float32)
    whole = log_mel(x, n_frames=300)
    # frames 100..199 computed from a chunk that starts n_fft/2 samples before frame 100's centre
    chunk = x[100 * 160 - 200 : 200 * 160 + 200]
    np.testing.assert_allclose(log_mel(chunk, n_frames=100, center=False), whole[100:200], atol=1e-4)


def test_frames_normalized_like_imagenet():
    img = np.zeros((2, 4, 6, 3), np.uint8)
    img[..., 0] = 255
    x = preprocess_frames(img)
    assert x.shape == (2, 3, 4, 6)
    assert np.allclose(x[:, 0], (1 - 0.485) / 0.229) and np.allclose(x[:, 1], -0.456 / 0.224)
