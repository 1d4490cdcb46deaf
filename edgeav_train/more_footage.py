"""More unlabeled training footage: rerun the corpus's own recorder (its gameplay-recorder folder) for new
seeds of the corpus's games, into a git-ignored folder laid out like the corpus (clips/<game>/<game>-s<seed>.mp4
and a splits.csv marking every clip `train`), ready for `edgeav cache`. With `--corpus`, the corpus's own clips are
linked in beside them with their splits, so one cache holds all the training footage and the val clips that
calibrate the onset threshold.

Only the video and its soundtrack are used downstream; the recorder's event logs are written beside them but no
training code reads them. Seeds start at 1001, far from the corpus's (1-20), so no val/test moment is re-recorded.
Needs Debian's python3-pygame and the games (see the recorder's README); the recorder is deterministic per seed.

    edgeav train footage --recorder ../shared/tools/gameplay-recorder -o .cache/more-footage \
        --seeds 1001-1028 [--jobs 2] [--corpus ../shared/data/gameplay]
"""

from __future__ import annotations

import csv
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from edgeav.atomic import atomic_path
from edgeav.errors import EdgeavError

GAMES = ("solarwolf", "funnyboat", "whichwayisup", "angrydd", "pathological", "monsterz", "ardentryst")


@dataclass(frozen=True)
class FootageJob:
    """`edgeav train footage`: which recorder, which seeds of which games, and where."""

    recorder: str
    """The corpus's recorder (its gameplay-recorder folder, with record.sh)."""
    out: str = ".cache/more-footage"
    """Folder the clips and splits.csv go into (clips already recorded there are kept)."""
    seeds: str = "1001-1028"
    """Recorder seeds, e.g. 1001-1028 or 1001,1005 (the corpus's own, 1-20, are refused)."""
    games: tuple[str, ...] = GAMES
    """Games recorded, each for every seed."""
    seconds: int = 60
    """Length of each clip."""
    jobs: int = 2
    """Clips recorded in parallel."""
    corpus: str = ""
    """A corpus whose clips are linked in too, with their splits (empty: none)."""


def parse_seeds(text: str) -> list[int]:
    """'1001-1028' or '1001,1005' → seeds; the corpus's own seeds (1-20) are refused."""
    seeds = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        seeds += list(range(int(lo), int(hi or lo) + 1))
    if any(s <= 20 for s in seeds):
        raise EdgeavError(
            f"seeds {text} overlap the corpus's seeds 1-20 (its val and test clips)",
            "choose seeds above 20, e.g. 1001-1028",
        )
    return seeds


def recorded(out: Path, game: str, seed: int) -> bool:
    """The recorder writes the event log last, after muxing the soundtrack: its presence marks a finished clip."""
    return (out / "events" / game / f"{game}-s{seed}.json").exists()


def record_clip(out: Path, game: str, seed: int, seconds: int, recorder: Path) -> str:
    if recorded(out, game, seed):
        return f"{game} s{seed}: already recorded"
    r = subprocess.run(
        [str(recorder / "record.sh"), game, str(seed), str(seconds), str(out)], capture_output=True, text=True
    )
    msg = [line for line in r.stderr.splitlines() if line.startswith("[recorder]")]
    return f"{game} s{seed}: rc={r.returncode} {msg[-1] if msg else r.stderr[-200:]}"


def link_corpus(corpus: Path, out: Path) -> list[list[str]]:
    """The corpus's clips linked into `out` (clips/<game>/), and their splits.csv rows."""
    with open(corpus / "splits.csv") as f:
        rows = [[r["clip_id"], r["game"], r["split"]] for r in csv.DictReader(f)]
    for clip_id, game, _ in rows:
        src, dst = (corpus / "clips" / game / f"{clip_id}.mp4").resolve(), out / "clips" / game / f"{clip_id}.mp4"
        if not src.exists():
            raise EdgeavError(f"corpus clip missing: {src}", f"check --corpus {corpus}")
        dst.parent.mkdir(parents=True, exist_ok=True)
        if not dst.is_symlink():
            dst.symlink_to(src)
    return rows


def more_footage(
    out: str,
    seeds: list[int],
    games=GAMES,
    seconds: int = 60,
    jobs: int = 2,
    recorder: Path | None = None,
    corpus: Path | None = None,
) -> Path:
    if recorder is None or not (recorder / "record.sh").exists():
        raise EdgeavError(f"gameplay recorder not found at {recorder}", "pass --recorder PATH")
    out_path = Path(out).resolve()  # the recorder runs from its own folder
    out_path.mkdir(parents=True, exist_ok=True)
    items = [(g, s) for g in games for s in seeds]
    with ThreadPoolExecutor(jobs) as ex:
        for line in ex.map(lambda it: record_clip(out_path, *it, seconds, recorder), items):
            print(line, flush=True)
    done = [(g, s) for g, s in items if recorded(out_path, g, s)]
    linked = link_corpus(Path(corpus), out_path) if corpus else []
    with atomic_path(out_path / "splits.csv") as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["clip_id", "game", "split"])
        w.writerows(linked + [[f"{g}-s{s}", g, "train"] for g, s in done])
    print(
        f"{len(done)} of {len(items)} clips in {out_path}" + (f", and {len(linked)} of the corpus's" if linked else "")
    )
    return out_path


def record_footage(job: FootageJob) -> Path:
    corpus = Path(job.corpus) if job.corpus else None
    return more_footage(job.out, parse_seeds(job.seeds), job.games, job.seconds, job.jobs, Path(job.recorder), corpus)


if __name__ == "__main__":
    import typer

    from edgeav.configcli import config_command

    typer.run(config_command(FootageJob, record_footage, doc=__doc__.split("\n")[0], short={"out": "-o"}))
