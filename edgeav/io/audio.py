"""Audio files (wav, flac, ogg, mp3, ... and the audio track of any video) → mono float32 at a chosen rate."""

from __future__ import annotations

import os

import numpy as np

from edgeav.errors import EdgeavError
from edgeav.io._av import _short, flush_resampler, make_resampler, open_container, resample_frame

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".m4a", ".aac", ".opus", ".aif", ".aiff", ".wma")


def audio_files(folder: str | os.PathLike) -> list:
    """Every audio file under `folder`, recursively, in a stable (sorted) order: a sound library's files."""
    from pathlib import Path

    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)


def read_audio(path: str | os.PathLike, sample_rate: int = 16000, max_seconds: float | None = None) -> np.ndarray:
    """Decode a whole audio file, downmix to mono and resample to `sample_rate` (any input rate, any channels).

    `max_seconds` bounds the memory for very long files (sound libraries hold hour-long ambiences).
    """
    with open_container(path, "audio") as c:
        if not c.streams.audio:
            raise EdgeavError(f"no audio stream in {path}", "give a file with sound (wav, flac, ogg, mp3, ...)")
        stream = c.streams.audio[0]
        resampler = make_resampler(sample_rate)
        chunks, n = [], 0
        limit = None if max_seconds is None else int(max_seconds * sample_rate)
        try:
            for frame in c.decode(stream):
                x = resample_frame(resampler, frame)
                chunks.append(x)
                n += len(x)
                if limit is not None and n >= limit:
                    break
            else:
                chunks.append(flush_resampler(resampler))
        except EdgeavError:
            raise
        except Exception as e:
            if n == 0:
                raise EdgeavError(f"cannot decode audio in {path}: {_short(e)}", "re-encode the file") from None
            # A truncated file: keep what decoded, as players do.
    x = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    if limit is not None:
        x = x[:limit]
    if len(x) == 0:
        raise EdgeavError(f"audio file has no samples: {path}", "re-export it")
    return x
