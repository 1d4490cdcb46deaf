"""Cue sheets: the placed suggestions of a run (the same placements `--save` mixes in) in the formats editing tools
read. Timelines go through OpenTimelineIO and its adapters (.otio, .edl CMX 3600, .xml Final Cut 7 / Premiere /
Resolve, .fcpxml Final Cut Pro X, .aaf Avid through pyaaf2); CSV, Audacity labels (.txt) and a Reaper project
(.rpp: the clip on one track, each suggested sound as an item on another) are plain text. Times are seconds from
the start of the footage; timeline formats count frames at the footage's own rate.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from edgeav.atomic import atomic_path
from edgeav.errors import EdgeavError

OTIO_FORMATS = {".otio": "otio_json", ".edl": "cmx_3600", ".xml": "fcp_xml", ".fcpxml": "fcpx_xml", ".aaf": "AAF"}
TEXT_FORMATS = (".csv", ".txt", ".rpp")
FORMATS = (*OTIO_FORMATS, *TEXT_FORMATS)
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".mxf", ".m4v")
TRACK_NAME = "edgeav suggestions"


@dataclass(frozen=True)
class Cue:
    t: float
    """Start, in seconds from the start of the footage."""
    sound: str
    """Sound id (the path relative to its library folder)."""
    file: str = ""
    """The sound file's path."""
    category: str = ""
    score: float = 0.0
    duration: float = 0.5
    """Seconds the sound plays (its file's length, capped)."""
    alternatives: tuple[str, ...] = field(default_factory=tuple)
    """The 2nd–5th suggestions at this moment, best first."""


@dataclass(frozen=True)
class Footage:
    """What a timeline is laid against: the clip, its frame rate and length."""

    path: str
    fps: float
    duration: float

    @classmethod
    def probe(cls, path: str) -> Footage:
        from edgeav.io.video import VideoFile

        info = VideoFile(path, require_audio=False).info
        return cls(str(Path(path).resolve()), float(info.fps), float(info.duration))


def sound_duration(path: str | Path, cap: float = 10.0) -> float:
    """A sound file's length in seconds (at most `cap`); 0.5 s when it cannot be read."""
    try:
        import soundfile

        return min(cap, float(soundfile.info(str(path)).duration))
    except Exception:
        try:
            from edgeav.io.audio import read_audio

            return min(cap, len(read_audio(path, 16000, max_seconds=cap)) / 16000)
        except Exception:
            return 0.5


def cues_from_jsonl(path: str | Path) -> list[Cue]:
    """The placed suggestions of an `edgeav run --jsonl` file (window lines with a "placed" entry)."""
    p = Path(path)
    if not p.exists():
        raise EdgeavError(f"run file not found: {p}", "give the JSONL written by edgeav run --jsonl")
    cues = []
    for n, line in enumerate(p.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            raise EdgeavError(
                f"{p.name} line {n} is not JSON", "give the JSONL written by edgeav run --jsonl"
            ) from None
        placed = rec.get("placed")
        if placed:
            alts = tuple(r["sound"] for r in rec.get("recommendations", []) if r["sound"] != placed["sound"])
            cues.append(
                Cue(
                    placed["t"],
                    placed["sound"],
                    placed.get("file", ""),
                    placed.get("category", ""),
                    placed.get("score", 0.0),
                    placed.get("duration", 0.5),
                    alts[:4],
                )
            )
    return cues


# ---------------------------------------------------------------------------------------------------- writing
def write_cues(cues: list[Cue], out: str | Path, footage: Footage) -> Path:
    """Write `cues` to `out` in the format its extension names (FORMATS), atomically."""
    out = Path(out)
    ext = out.suffix.lower()
    if ext not in FORMATS:
        raise EdgeavError(
            f"unknown cue sheet format {out.suffix or '(none)'} ({out.name})",
            f"end the file name with one of {', '.join(FORMATS)}",
        )
    cues = sorted(cues, key=lambda c: c.t)
    with atomic_path(out) as tmp:
        if ext in OTIO_FORMATS:
            _write_otio(cues, tmp, footage, ext)
        elif ext == ".csv":
            _write_csv(cues, tmp, footage)
        elif ext == ".txt":
            tmp.write_text("".join(f"{c.t:.6f}\t{c.t + c.duration:.6f}\t{c.sound}\n" for c in cues))
        else:
            tmp.write_text(reaper_project(cues, footage))
    return out


def timecode(t: float, fps: float) -> str:
    """HH:MM:SS:FF at the footage's (integer-rounded) frame rate."""
    rate = max(1, round(fps))
    frames = round(t * fps)
    s, f = divmod(frames, rate)
    return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}:{f:02d}"


def _write_csv(cues: list[Cue], tmp: Path, footage: Footage) -> None:
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["t", "timecode", "sound", "file", "category", "score", "duration", "alternatives"])
        for c in cues:
            w.writerow(
                [
                    f"{c.t:.3f}",
                    timecode(c.t, footage.fps),
                    c.sound,
                    c.file,
                    c.category,
                    f"{c.score:.4f}",
                    f"{c.duration:.3f}",
                    " ".join(c.alternatives),
                ]
            )


def _timeline(cues: list[Cue], footage: Footage, with_clip: bool, sounds_kind: str, max_lanes: int | None = None):
    import opentimelineio as otio

    fps = footage.fps

    def frames(n: int):
        return otio.opentime.RationalTime(n, fps)

    def span(start: int, n: int):
        return otio.opentime.TimeRange(frames(start), frames(max(1, n)))

    def ref(path: str, n: int):
        url = Path(path).resolve().as_uri() if path else ""
        return otio.schema.ExternalReference(target_url=url, available_range=span(0, n))

    tl = otio.schema.Timeline(name=Path(footage.path).stem, global_start_time=frames(0))
    if with_clip:
        n = round(footage.duration * fps)
        video = otio.schema.Track(name="footage", kind=otio.schema.TrackKind.Video)
        video.append(
            otio.schema.Clip(
                name=Path(footage.path).name, media_reference=ref(footage.path, n), source_range=span(0, n)
            )
        )
        tl.tracks.append(video)
    for i, lane in enumerate(lanes(cues, fps, max_lanes)):
        track = otio.schema.Track(name=TRACK_NAME if i == 0 else f"{TRACK_NAME} {i + 1}", kind=sounds_kind)
        cursor = 0  # in frames: positions are laid in whole frames, so no rounding accumulates
        for c in lane:
            start, n = round(c.t * fps), max(1, round(c.duration * fps))
            if start > cursor:
                track.append(otio.schema.Gap(source_range=span(0, start - cursor)))
            clip = otio.schema.Clip(name=c.sound, media_reference=ref(c.file, n), source_range=span(0, n))
            clip.metadata["edgeav"] = {"score": c.score, "category": c.category, "alternatives": list(c.alternatives)}
            track.append(clip)
            cursor = start + n
        tl.tracks.append(track)
    return tl


def lanes(cues: list[Cue], fps: float, max_lanes: int | None = None) -> list[list[Cue]]:
    """Cues packed into tracks: a track holds one sound at a time, so a sound that starts while another still plays
    goes to the first track free by then (or, past `max_lanes`, is cut short where the next one starts)."""
    out: list[list[Cue]] = []
    ends: list[int] = []  # per lane, the frame its last sound ends on
    for c in sorted(cues, key=lambda c: c.t):
        start, n = round(c.t * fps), max(1, round(c.duration * fps))
        free = next((i for i, e in enumerate(ends) if e <= start), None)
        if free is None and max_lanes is not None and len(out) >= max_lanes:
            free = min(range(len(ends)), key=lambda i: ends[i])
            prev = out[free][-1]
            out[free][-1] = Cue(
                prev.t,
                prev.sound,
                prev.file,
                prev.category,
                prev.score,
                max(1, start - round(prev.t * fps)) / fps,
                prev.alternatives,
            )
        if free is None:
            out.append([])
            ends.append(0)
            free = len(out) - 1
        out[free].append(c)
        ends[free] = start + n
    return out


def _otio():  # noqa: ANN202
    try:
        import opentimelineio as otio
    except ImportError:
        raise EdgeavError(
            "timeline cue sheets need OpenTimelineIO", "pip install 'edgeav[edit]' (or use .csv, .txt, .rpp)"
        ) from None
    _round_fcpx_times()
    return otio


def _seconds(value: str) -> Fraction:
    """An FCP X time ("207/25s", "3s") as an exact fraction of seconds."""
    num, _, den = value.replace("s", "").partition("/")
    return Fraction(num) / Fraction(den or 1)


def _round_fcpx_times() -> None:
    """The FCP X adapter turns "207/25s" into frames with int(207 / 25 * 25) = int(206.99999999999997) = 206: a
    cue on such a frame would be written and read one frame early. Its two time parsers (the writer's and the
    reader's) are replaced by ones that compute in fractions and round."""
    import opentimelineio as otio

    try:  # the module OpenTimelineIO loads the adapter as (its own copy, not otio_fcpx_xml_adapter.fcpx_xml)
        fcpx_xml = otio.adapters.from_name("fcpx_xml").module()
    except Exception:
        return  # no FCP X adapter: nothing to mend
    if getattr(fcpx_xml.to_rational_time, "edgeav_rounds", False):
        return

    def to_rational_time(rational_number, fps):  # noqa: ANN001, ANN202 (the adapter's signatures)
        if rational_number == "0s" or rational_number is None:
            return otio.opentime.RationalTime(0, int(fps))
        return otio.opentime.RationalTime(round(_seconds(rational_number) * Fraction(fps)), int(fps))

    def number_of_frames(self, time_value, format_id):  # noqa: ANN001, ANN202
        if time_value == "0s" or time_value is None:
            return 0
        fd_total, fd_rate = self._format_frame_duration(format_id)
        return round(_seconds(time_value) * Fraction(fd_rate) / Fraction(fd_total))

    to_rational_time.edgeav_rounds = True
    fcpx_xml.to_rational_time = to_rational_time
    fcpx_xml.FcpxXml._number_of_frames = number_of_frames


def _write_otio(cues: list[Cue], tmp: Path, footage: Footage, ext: str) -> None:
    otio = _otio()

    audio = otio.schema.TrackKind.Audio
    if ext == ".edl":  # CMX 3600 holds one (video) track: the suggestions, events named by their sound files
        tl, kw = _timeline(cues, footage, False, otio.schema.TrackKind.Video, max_lanes=1), {}
    else:
        tl, kw = _timeline(cues, footage, True, audio), {}
    if ext == ".aaf":
        kw = {"use_empty_mob_ids": True}  # new master mobs: the media are plain files, not an Avid project's
    try:
        otio.adapters.write_to_file(tl, str(tmp), adapter_name=OTIO_FORMATS[ext], **kw)
    except Exception as e:
        raise EdgeavError(
            f"OpenTimelineIO could not write {ext}: {' '.join(str(e).split())[:160]}",
            "try another format (.otio, .xml, .fcpxml, .csv)",
        ) from None


def _rpp_source(path: str) -> str:
    kind = {".wav": "WAVE", ".ogg": "VORBIS", ".mp3": "MP3", ".flac": "FLAC", ".opus": "OPUS"}
    return "VIDEO" if path.lower().endswith(VIDEO_EXTENSIONS) else kind.get(Path(path).suffix.lower(), "WAVE")


def _rpp_item(name: str, position: float, length: float, path: str) -> str:
    return (
        f"    <ITEM\n      POSITION {position:.6f}\n      LENGTH {length:.6f}\n      NAME {json.dumps(name)}\n"
        f"      <SOURCE {_rpp_source(path)}\n        FILE {json.dumps(path)}\n      >\n    >\n"
    )


def reaper_project(cues: list[Cue], footage: Footage) -> str:
    """A Reaper project: the footage on the first track, every suggested sound as an item on the second."""
    head = f'<REAPER_PROJECT 0.1 "6.0" 0\n  TEMPO 120 4 4\n  SAMPLERATE 48000 0 0\n  VIDEO_CONFIG 0 0 {footage.fps:g}\n'
    video = (
        f'  <TRACK\n    NAME "footage"\n{_rpp_item(Path(footage.path).name, 0, footage.duration, footage.path)}  >\n'
    )
    items = "".join(_rpp_item(c.sound, c.t, c.duration, c.file) for c in cues)
    return head + video + f'  <TRACK\n    NAME "{TRACK_NAME}"\n{items}  >\n>\n'


# ---------------------------------------------------------------------------------------------------- reading
def read_cues(path: str | Path, categories: dict[str, str] | None = None, fps: float = 25.0) -> list[Cue]:
    """Cues of any cue sheet above, of an `edgeav run --jsonl` file, of a corpus event log (.json) or of a verdicts
    store (.jsonl with "verdict" lines: the accepted ones). `categories` fills in missing categories by sound id;
    `fps` is the frame rate of an EDL's timecodes (an EDL does not record it)."""
    p = Path(path)
    if not p.exists():
        raise EdgeavError(f"cue sheet not found: {p}", "check the path")
    ext = p.suffix.lower()
    if ext in OTIO_FORMATS:
        cues = _read_otio(p, fps)
    elif ext == ".csv":
        cues = _read_csv(p)
    elif ext == ".txt":
        cues = _read_labels(p)
    elif ext == ".rpp":
        cues = read_reaper_project(p)
    elif ext == ".json":
        cues = _read_event_log(p)
    elif ext == ".jsonl":
        cues = _read_jsonl(p)
    else:
        raise EdgeavError(
            f"unknown cue sheet format {p.suffix or '(none)'} ({p.name})",
            f"give one of {', '.join((*FORMATS, '.json', '.jsonl'))}",
        )
    if categories:
        cues = [
            c
            if c.category
            else Cue(c.t, c.sound, c.file, categories.get(c.sound, ""), c.score, c.duration, c.alternatives)
            for c in cues
        ]
    return sorted(cues, key=lambda c: c.t)


def _sound_id(name: str, url: str) -> str:
    return name or Path(url).name


def _read_otio(p: Path, fps: float) -> list[Cue]:
    otio = _otio()

    try:
        kw = {"rate": fps} if p.suffix.lower() == ".edl" else {}
        tl = otio.adapters.read_from_file(str(p), **kw)
    except Exception as e:
        raise EdgeavError(
            f"{p.name} is not a readable {p.suffix} cue sheet ({' '.join(str(e).split())[:120]})",
            "export it again from your editor",
        ) from None
    zero = tl.global_start_time.to_seconds() if tl.global_start_time is not None else 0.0
    if p.suffix.lower() == ".edl":  # OTIO lays an EDL's events from its first record time, which it drops
        zero = _first_record_in(p, fps)
    cues = []
    for clip in tl.find_clips():
        url = getattr(clip.media_reference, "target_url", "") or ""
        if url.lower().endswith(VIDEO_EXTENSIONS):
            continue  # the footage itself
        meta = clip.metadata.get("edgeav", {})
        start = zero + clip.range_in_parent().start_time.to_seconds()
        file = url[len("file://") :] if url.startswith("file://") else url
        cues.append(
            Cue(
                round(start, 6),
                _sound_id(clip.name, url),
                file,
                meta.get("category", ""),
                float(meta.get("score", 0.0)),
                clip.duration().to_seconds(),
                tuple(meta.get("alternatives", ())),
            )
        )
    return cues


def _first_record_in(p: Path, fps: float) -> float:
    """The record-in timecode of an EDL's first event, in seconds."""
    tc = r"(\d\d):(\d\d):(\d\d)[:;](\d\d)"
    m = re.search(rf"^\d+\s+\S+\s+\S+\s+\S+\s+{tc}\s+{tc}\s+{tc}", p.read_text(), flags=re.M)
    if not m:
        return 0.0
    h, mi, s, f = (int(x) for x in m.groups()[8:12])
    return h * 3600 + mi * 60 + s + f / round(fps)


def _read_csv(p: Path) -> list[Cue]:
    with open(p, newline="") as f:
        rows = list(csv.DictReader(f))
    if rows and not {"t", "sound"} <= set(rows[0]):
        raise EdgeavError(f"{p.name} has no t and sound columns", "a cue CSV has columns t,sound[,file,category,...]")
    return [
        Cue(
            float(r["t"]),
            r["sound"],
            r.get("file", ""),
            r.get("category", ""),
            float(r.get("score") or 0),
            float(r.get("duration") or 0.5),
            tuple((r.get("alternatives") or "").split()),
        )
        for r in rows
    ]


def _read_labels(p: Path) -> list[Cue]:
    cues = []
    for line in p.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and not line.startswith("\\"):  # "\" lines are Audacity's spectral selections
            start, end, label = float(parts[0]), float(parts[1]), parts[2].strip()
            cues.append(Cue(start, label, duration=max(0.0, end - start)))
    return cues


def read_reaper_project(p: Path) -> list[Cue]:
    """The sound items of a Reaper project (its video items left out)."""
    text = p.read_text()
    cues = []
    for m in re.finditer(r"<ITEM\s(.*?)<SOURCE (\w+)\s+FILE (\"[^\"]*\"|\S+)", text, flags=re.S):
        body, kind, file = m.group(1), m.group(2), m.group(3).strip('"')
        if kind == "VIDEO":
            continue
        pos = float(re.search(r"POSITION ([\d.]+)", body).group(1))
        length = float(re.search(r"LENGTH ([\d.]+)", body).group(1))
        name = re.search(r"NAME (\"[^\"]*\"|\S+)", body)
        cues.append(Cue(pos, name.group(1).strip('"') if name else Path(file).name, file, duration=length))
    return cues


def _read_event_log(p: Path) -> list[Cue]:
    d = json.loads(p.read_text())
    if "sound_events" not in d:
        raise EdgeavError(f"{p.name} is not an event log (no sound_events)", "give a corpus event log or a cue sheet")
    return [Cue(float(e["t"]), e["sound_id"]) for e in d["sound_events"]]


def _read_jsonl(p: Path) -> list[Cue]:
    first = next((json.loads(x) for x in p.read_text().splitlines() if x.strip()), {})
    if "verdict" in first and "recommendations" not in first:  # a verdicts store: what the editor accepted
        from edgeav.feedback import FeedbackStore
        from edgeav.frontends import WindowSpec

        pre_roll = WindowSpec().pre_roll_s  # a verdict is on its window, whose sound starts pre_roll into it
        return [Cue(round(v.t + pre_roll, 3), v.sound) for v in FeedbackStore(p).load() if v.verdict == "accept"]
    return cues_from_jsonl(p)
