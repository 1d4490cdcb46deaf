"""Adapting to a game the event head never saw: the shipped student's event head retrained on every game but one
(fingerprinted starts, label-free), then `edgeav adapt` on that game's train clips (unlabeled) with the corpus's
sound library, then again with simulated verdicts. Each model is scored as a user gets it: `edgeav run
--events-only` on the game's raw test clips, its event lines matched to the logs within ±80 ms; found and right at
top-1, beside the blind prior (the game's most frequent train effect) at the same found events.

The student's window encoder and the teacher's audio side (which indexes the bank) were trained on every game: only
the event head, which finds the events and names their sound, is left without the game. Its onset threshold is
calibrated on the other games' val clips. Verdicts are simulated from the logs of the game's *train* clips (a user
judging suggestions on their own footage): at `--verdicts` sampled events, the sound that fired is accepted and the
adapted head's top sound there, if different, rejected. A second set is what the review page gets from a user
(`--reviewed`): the adapted model's suggestions on each train clip, least certain first as the page orders them,
judged against the logs (`reviewed_verdicts`). Test clips are never judged.

    python -m benchmarks.adapt_events --game pathological
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.common import RESULTS, command_line, write_result

TOLERANCE_S = 0.08


def without_event_head(model: str, out: Path) -> str:
    """`model` with its event head removed (every other tensor its own), saved to `out`."""
    from edgeav.models import load_model, save_model
    from edgeav.models.av import AVModel

    m = load_model(model)
    bare = AVModel(dataclasses.replace(m.cfg, event_widths=()), m.card.replace(onset_threshold=None))
    bare.load_state_dict({k: v for k, v in m.state_dict().items() if not k.startswith("events.")})
    return str(save_model(bare, out, bare.card))


def head_without(game: str, a: argparse.Namespace, work: Path, root: Path) -> str:
    """The event head trained on the other games, its threshold calibrated on their val clips."""
    from edgeav.models import load_model, save_model
    from edgeav_train.event_eval import calibrate_onsets
    from edgeav_train.events import EventTrainConfig, train_events

    done = work / "without.safetensors"
    if done.exists():
        return str(done)
    base = without_event_head(a.model, work / "base")
    cfg = EventTrainConfig(
        model=base,
        sounds=str(root / "sounds"),
        out=str(work / "head"),
        cache=a.cache25,
        fingerprints=a.fingerprints,
        leave_out=(f"{game}-",),
        steps=a.head_steps,
        pool=a.pool,
        stem=a.stem,
        calibrate=False,
        threads=a.threads,
    )
    m = load_model(str(train_events(cfg)))
    threshold, _ = calibrate_onsets(m, a.cache25, str(root), (f"{game}-",))
    save_model(m, done.with_suffix(""), m.card.replace(onset_threshold=round(threshold, 3)))
    return str(done)


def simulated_verdicts(model: str, cache25: Path, clips: list, bank, n: int, seed: int) -> list:  # noqa: ANN001
    """Verdicts at `n` events of the game's train clips: the fired sound accepted; the head's top sound there,
    if different, rejected. A verdict's t is its window's start (a pre-roll before the event)."""
    from edgeav.feedback import Verdict
    from edgeav.frontends import WindowSpec
    from edgeav.models import load_model
    from edgeav_train.event_eval import clip_scores
    from edgeav_train.events import FrameClips

    head = load_model(model).events
    frames = FrameClips(cache25, ("train", "val"))
    by_source = dict(zip(frames.sources, frames.frames))
    events = [(c, e) for c in clips for e in json.loads(c.events.read_text())["sound_events"]]
    rng = np.random.default_rng(seed)
    picked = [events[i] for i in sorted(rng.choice(len(events), min(n, len(events)), replace=False))]
    embs = {}
    out = []
    for clip, e in picked:
        src = str(Path(clip.video).resolve())
        if src not in embs:
            embs[src] = clip_scores(head, by_source[src])[1]
        f = min(int(round(e["t"] * frames.fps)), len(embs[src]) - 1)
        top = bank.ids[int(np.argmax(bank.embeddings @ embs[src][f]))]
        t = max(0.0, e["t"] - WindowSpec().pre_roll_s)
        out.append(Verdict(src, t, e["sound_id"], "accept", [], ""))
        if top != e["sound_id"]:
            out.append(Verdict(src, t, top, "reject", [], ""))
    return out


def judged_card(recommendations: list[dict], fired: str | None) -> list[tuple[str, str]]:
    """[(sound, verdict)] a user gives one review card: its top sound accepted where it is the one that fired;
    otherwise the top sound rejected and, where the fired sound is among the card's top 5, that one swapped in and
    accepted. A card at no logged start (`fired` None) is rejected."""
    top = recommendations[0]["sound"]
    if top == fired:
        return [(top, "accept")]
    swap = [(fired, "accept")] if fired in [r["sound"] for r in recommendations[:5]] else []
    return [(top, "reject"), *swap]


def review_cards(model: str, bank_path: str, clip) -> list:  # noqa: ANN001
    """The review page's cards for one clip: the run's placed events (a sound does not stack on itself), top 5."""
    from edgeav.pipeline import RunConfig, run
    from edgeav.review import Suggestion

    cards = []

    def on(rec: dict) -> None:
        if rec.get("placed"):
            cards.append(Suggestion(rec["placed"]["t"], 0.0, rec["recommendations"]))

    run(RunConfig(str(clip.video), model=model, bank=bank_path, events_only=True, quiet=True), on_window=on)
    return cards


def reviewed_verdicts(model: str, bank_path: str, clips: list, n: int, order: str = "uncertain") -> list:
    """A user on the review page of each train clip (`edgeav review`: the run's events, top 5 each, cards in the
    page's `order`, least certain first by default) giving `n` verdicts in all, the clips' pages taken in turn one
    card at a time (`judged_card` against the clip's log, a card at a logged start within ±80 ms being that start's).
    t: the card's window start."""
    from edgeav.feedback import Verdict
    from edgeav.frontends import WindowSpec
    from edgeav.review import review_order
    from edgeav.score import match_times

    pages = []  # per clip: [(source, card, fired sound or None)] in the page's order
    for clip in clips:
        cards = review_cards(model, bank_path, clip)
        ev = json.loads(clip.events.read_text())["sound_events"]
        fired = {i: ev[j]["sound_id"] for i, j in match_times([c.t for c in cards], [e["t"] for e in ev], TOLERANCE_S)}
        src = str(Path(clip.video).resolve())
        pages.append([(src, cards[i], fired.get(i)) for i in review_order(cards, order)])
    turns = [page[k] for k in range(max(map(len, pages), default=0)) for page in pages if k < len(page)]
    given = [
        Verdict(src, round(max(0.0, card.t - WindowSpec().pre_roll_s), 3), sound, verdict, [], "")
        for src, card, fired in turns
        for sound, verdict in judged_card(card.recommendations, fired)
    ]
    return given[:n]


PRIOR_WEIGHTS = (0.0, 0.02, 0.04, 0.07, 0.1, 0.15)  # edgeav.prior weights scored for the adapted heads


def event_lines(model: str, bank_path: str, clip, k: int, **options) -> list[dict]:  # noqa: ANN001
    """`edgeav run --events-only --jsonl` on one clip (RunConfig `options` beside), the footage prior off, every
    event's top `k` sounds: its event lines."""
    from edgeav.pipeline import RunConfig, run

    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "run.jsonl"
        cfg = RunConfig(str(clip.video), model=model, bank=bank_path, events_only=True, jsonl=str(out), quiet=True)
        run(dataclasses.replace(cfg, top_k=k, prior_weight=0.0, **options))
        return [json.loads(x) for x in out.read_text().splitlines()]


def scored_lines(clips: list, lines: list[list[dict]]) -> tuple[dict, list]:
    """Each clip's event lines against its log: detection P/R/F1 and [(true sound, {sound: score})] at the found
    events."""
    from edgeav.score import match_times
    from edgeav_train.event_eval import prf

    n_true = n_pred = tp = 0
    found = []
    for clip, got in zip(clips, lines):
        ev = json.loads(clip.events.read_text())["sound_events"]
        pairs = match_times([r["t"] for r in got], [e["t"] for e in ev], TOLERANCE_S)
        n_true, n_pred, tp = n_true + len(ev), n_pred + len(got), tp + len(pairs)
        found += [(ev[j]["sound_id"], {r["sound"]: r["score"] for r in got[i]["recommendations"]}) for i, j in pairs]
    return prf(tp, n_pred, n_true), found


def found_events(model: str, bank_path: str, clips: list, k: int, feedback: str = "") -> tuple[dict, list]:  # noqa: ANN001
    """`edgeav run --events-only` on each clip (with `--feedback` where given), scored (`scored_lines`)."""
    options = {"feedback": feedback} if feedback else {}
    return scored_lines(clips, [event_lines(model, bank_path, c, k, **options) for c in clips])


def top_at_found(found: list, bias: dict | None) -> list[tuple[str, str]]:
    """[(true sound, top-1 sound)] at the found events, with `bias` ({sound: score bias}) added to the scores."""
    return [(true, max(scores, key=lambda s: scores[s] + (bias[s] if bias else 0.0))) for true, scores in found]


def confusion(pairs: list) -> dict[str, dict[str, int]]:
    """{true sound: {top-1 sound: found events}} of [(true, top)] pairs: what a result keeps of each found event."""
    out: dict[str, dict[str, int]] = {}
    for true, top in pairs:
        out.setdefault(true, {}).setdefault(top, 0)
        out[true][top] += 1
    return {t: dict(sorted(c.items())) for t, c in sorted(out.items())}


def macro_interval(found: dict[str, dict[str, int]], draws: int = 2000, seed: int = 0) -> list[float]:
    """The 95% bootstrap interval of macro top-1 over the found events of a `confusion` (drawn with replacement):
    how far the few events of a rare sound move it."""
    pairs = [(t, p) for t, tops in found.items() for p, n in tops.items() for _ in range(n)]
    if not pairs:
        return [0.0, 0.0]
    true = np.array([t for t, _ in pairs])
    right = np.array([t == p for t, p in pairs], float)
    rng = np.random.default_rng(seed)
    macros = []
    for _ in range(draws):
        i = rng.integers(0, len(pairs), len(pairs))
        sounds, inverse = np.unique(true[i], return_inverse=True)
        macros.append(float(np.mean(np.bincount(inverse, right[i]) / np.bincount(inverse))))
    return [round(float(x), 4) for x in np.percentile(macros, [2.5, 97.5])]


def sound_at_found(pairs: list, n_true: int, prior: str) -> dict:
    """Found and right at top-1 (over all events); at the found events ([(true, top-1)] `pairs`: `top_at_found`)
    top-1 and macro top-1 (mean over the sounds that fired) beside the blind prior's."""
    hits: dict[str, list[bool]] = {}  # per true sound, at its found events: was the top-1 right
    for true, top in pairs:
        hits.setdefault(true, []).append(top == true)
    right, tp = sum(map(sum, hits.values())), len(pairs)
    prior_right = len(hits.get(prior, []))
    return {
        "found_right": round(right / n_true, 4),
        "prior_found_right": round(prior_right / n_true, 4),
        "top1_at_found": round(right / max(tp, 1), 4),
        "prior_top1_at_found": round(prior_right / max(tp, 1), 4),
        "macro_top1_at_found": round(float(np.mean([np.mean(v) for v in hits.values()])) if hits else 0.0, 4),
        "prior_macro_top1_at_found": round(1 / len(hits) if prior in hits else 0.0, 4),
    }


def scored(model: str, bank_path: str, clips: list, prior: str, feedback: str = "") -> dict:  # noqa: ANN001
    """Detection and the sound at found events, scored as `edgeav run --events-only` gives them with the model's
    own footage prior (and `--feedback` where given); the found events' true against top-1 sounds (`confusion`) and
    the bootstrap interval of macro top-1; for a model that carries a prior, also under each of PRIOR_WEIGHTS
    (`by_prior_weight`)."""
    from edgeav.bank import SoundBank
    from edgeav.models import load_model
    from edgeav.prior import prior_bias

    bank = SoundBank.load(bank_path)
    card = load_model(model).card
    det, found = found_events(model, bank_path, clips, len(bank), feedback)

    def bias(weight: float) -> dict | None:
        b = prior_bias(card.footage_starts, bank.ids, weight)
        return None if b is None else dict(zip(bank.ids, b.tolist()))

    def at(weight: float) -> dict:
        return sound_at_found(top_at_found(found, bias(weight)), det["true_events"], prior)

    pairs = top_at_found(found, bias(card.prior_weight))
    named = sound_at_found(pairs, det["true_events"], prior)
    row = {**det, **named, "prior_weight": card.prior_weight, "feedback": bool(feedback)}
    row["found_sounds"] = confusion(pairs)
    row["macro_top1_interval"] = macro_interval(row["found_sounds"])
    if card.footage_starts:
        row["by_prior_weight"] = {str(w): at(w) for w in PRIOR_WEIGHTS}
    return row


def adapted(model: str, footage: Path, root: Path, out: Path, a: argparse.Namespace, feedback: str = "") -> dict:
    from edgeav.adapt import AdaptConfig
    from edgeav_train.adapt import adapt

    cfg = AdaptConfig(
        footage=str(footage),
        sounds=str(root / "sounds"),
        model=model,
        out=str(out),
        steps=a.adapt_steps,
        event_steps=a.event_steps,
        feedback=feedback,
        seed=a.seed,
    )
    done = out / "adapt.json"
    finished = done.exists() and json.loads(done.read_text()).get("config") == dataclasses.asdict(cfg)
    if a.score_only or finished:  # the adaptation a previous run made (with these settings), scored again
        rep = json.loads(done.read_text())
    else:
        rep = adapt(cfg)
    # the report's stage times add up over resumed runs: what the adaptation cost in all
    return {"model": rep["model"], "seconds": round(sum(rep["seconds"].values()), 1), "report": rep}


def reviewed_summary(verdicts: list, adaptation: dict) -> dict:
    """What a result keeps of the review: cards judged, the verdicts they gave, the sounds accepted, and the time."""
    accepted = [v.sound for v in verdicts if v.verdict == "accept"]
    return {
        "reviewed_cards": len({(v.source, v.t) for v in verdicts}),
        "reviewed_verdicts": len(verdicts),
        "reviewed_accepted": {s: accepted.count(s) for s in sorted(set(accepted))},
        "adapt_reviewed_seconds": adaptation["seconds"],
    }


def feedback_file(adaptation: dict) -> str:
    """The re-embedded verdicts an adaptation wrote: what the `edgeav run --feedback` it prints re-ranks by."""
    return adaptation["report"].get("feedback", {}).get("file", "")


def markdown(res: dict, cmd: str) -> str:
    thresholds = "; ".join(
        f"{name} {t['set']} (was {t['was']}; {t['detects']:,} detections, {t['starts']:,} starts)"
        for name, t in res["thresholds"].items()
    )
    said = [f"{res['event_steps']} event-head steps"] if "event_steps" in res else []
    said += [f"seed {res['seed']}"] if res.get("seed") else []
    steps = f" ({', '.join(said)})" if said else ""
    accepted = sum(res.get("reviewed_accepted", {}).values())
    reviewed = (
        f"; with the {res['reviewed_verdicts']} verdicts of {res['reviewed_cards']} review cards judged least certain "
        f"first ({accepted} accepted, {res['reviewed_verdicts'] - accepted} rejected) in "
        f"{res['adapt_reviewed_seconds']:.0f} s"
        if "reviewed_cards" in res
        else ""
    )
    lines = [
        f"Held-out game **{res['game']}**: the student's event head retrained without it ({res['head_steps']} steps, "
        f"fingerprinted starts of the other games), then `edgeav adapt`{steps} on its {res['footage_clips']} train "
        f"clips ({res['footage_minutes']:.1f} min, unlabeled, the corpus's {res['library']} sounds) in "
        f"{res['adapt_seconds']:.0f} s; with {res['verdicts']} simulated verdicts on those clips in "
        f"{res['adapt_feedback_seconds']:.0f} s{reviewed}. Scored end to end on its {res['test_clips']} test clips "
        f"({res['test_events']} events): `edgeav run --events-only` lines within ±80 ms. The window encoder and the "
        "bank's audio side saw every game; the event head did not see this one. Adapt sets the onset threshold "
        f"from the footage (no more detections than fingerprinted starts): {thresholds}.",
        "",
        "| event head | P / R / F1 | found & right at top-1 (prior) | at found events: top-1 / macro top-1 (prior) "
        "| macro top-1: 95% bootstrap |",
        "|---|---|---|---|---|",
    ]
    for name, r in res["rows"].items():
        lines.append(
            f"| {name} | {r['precision']:.2f} / {r['recall']:.2f} / **{r['f1']:.2f}** | {r['found_right']:.3f} "
            f"({r['prior_found_right']:.3f}) | {r['top1_at_found']:.3f} / {r['macro_top1_at_found']:.3f} "
            f"({r['prior_top1_at_found']:.3f} / {r['prior_macro_top1_at_found']:.3f}) | {interval(r)} |"
        )
    lines += [
        "",
        "The adapted heads' suggestions under each footage prior weight (edgeav.prior; the rows above use the "
        "weight their model carries): top-1 / macro top-1 at found events, on the game's val clips, then its test "
        "clips.",
        "",
        "| prior weight | adapted: val | adapted: test | + verdicts: val | + verdicts: test |",
        "|---|---|---|---|---|",
    ]
    named = ("adapted", "adapted + verdicts")
    for w in PRIOR_WEIGHTS:
        cells = [
            f"{r['top1_at_found']:.3f} / {r['macro_top1_at_found']:.3f}{' ✓' if meets_aim(r) else ''}"
            for name in named
            for r in (res["val_rows"][name]["by_prior_weight"][str(w)], res["rows"][name]["by_prior_weight"][str(w)])
        ]
        lines.append(f"| {w} | " + " | ".join(cells) + " |")
    lines += ["", f"Reproduce: `{cmd}`"]
    return "\n".join(lines) + "\n"


def interval(row: dict) -> str:
    """A row's macro top-1 bootstrap interval, as a table shows it ("–" for a row measured without one)."""
    lo_hi = row.get("macro_top1_interval")
    return f"{lo_hi[0]:.2f}–{lo_hi[1]:.2f}" if lo_hi else "–"


def summary_cell(row: dict, verdicts: bool = False) -> str:
    """Top-1 / macro top-1 at found events [its interval] (the prior's), ✓ where the aim is met; a verdicts row
    scored without the verdicts' re-ranking is marked ⁿ."""
    cell = (
        f"{row['top1_at_found']:.3f} / {row['macro_top1_at_found']:.3f} [{interval(row)}] "
        f"({row['prior_top1_at_found']:.3f} / {row['prior_macro_top1_at_found']:.3f})"
    )
    return cell + (" ✓" if meets_aim(row) else "") + (" ⁿ" if verdicts and not row.get("feedback") else "")


def meets_aim(row: dict) -> bool:
    """The adaptation aim at found events: top-1 at or above the prior's, macro top-1 at least twice the prior's."""
    return row["top1_at_found"] >= row["prior_top1_at_found"] and (
        row["macro_top1_at_found"] >= 2 * row["prior_macro_top1_at_found"]
    )


def prior_weight_table(games: dict) -> dict:
    """{weight: the games meeting the aim on val and on test, adapted and adapted + verdicts}, over the games
    scored under every prior weight."""
    scored_games = {g: r for g, r in games.items() if r["val"] and "by_prior_weight" in r["adapted"]}
    table = {}
    for w in PRIOR_WEIGHTS:
        t = {"games": len(scored_games)}
        for key, name, split in (
            ("val", "adapted", "val"),
            ("test", "adapted", "test"),
            ("val_fed", "adapted + verdicts", "val"),
            ("test_fed", "adapted + verdicts", "test"),
        ):
            t[key] = sorted(
                g
                for g, r in scored_games.items()
                if meets_aim((r["val"] if split == "val" else r)[name]["by_prior_weight"][str(w)])
            )
        table[str(w)] = t
    return table


def game_results(folder: str | Path) -> dict:
    """{game: its result} of every held-out game measured in `folder` (adapt_events-GAME.json)."""
    out = {}
    for path in sorted(Path(folder).glob("adapt_events-*.json")):
        res = json.loads(path.read_text())
        if "game" in res:  # the summary sits beside them
            out[res["game"]] = res
    return out


def summary(out: str | Path = RESULTS) -> dict:
    """One table over every held-out game measured (results/adapt_events-GAME.json): adapt_events_summary."""
    games = {
        g: {"library": res["library"], "test_events": res["test_events"], **res["rows"], "val": res.get("val_rows", {})}
        for g, res in game_results(out).items()
    }
    plain, fed, reviewed = ("adapted", "adapted + verdicts", "adapted + reviewed verdicts")
    res = {
        "games": games,
        "met": {
            name: sorted(g for g, r in games.items() if name in r and meets_aim(r[name]))
            for name in (plain, fed, reviewed)
        },
        "reviewed_games": sorted(g for g, r in games.items() if reviewed in r),
        "by_prior_weight": prior_weight_table(games),
    }
    lines = [
        "| held-out game | test events | without it: found & right | adapted: found & right | adapted: top-1 / "
        "macro at found (prior) | + verdicts: top-1 / macro at found (prior) | + reviewed verdicts | chance |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for g, r in games.items():
        cells = [summary_cell(r[plain]), summary_cell(r[fed], verdicts=True)]
        cells.append(summary_cell(r[reviewed], verdicts=True) if reviewed in r else "–")
        lines.append(
            f"| {g} | {r['test_events']} | {r['without the game']['found_right']:.3f} | {r[plain]['found_right']:.3f} "
            f"| {' | '.join(cells)} | {1 / r['library']:.3f} |"
        )
    lines += [
        "",
        f"✓: the aim met (top-1 at found events at or above the prior's, macro top-1 ≥ 2× the prior's): adapted in "
        f"{len(res['met'][plain])} of {len(games)} games, with verdicts in {len(res['met'][fed])} of {len(games)}. "
        f"With reviewed verdicts (the adapted model's review cards on the train clips judged least certain first) "
        f"in {len(res['met'][reviewed])} of {len(res['reviewed_games'])} games measured. "
        "[lo–hi]: macro top-1's 95% bootstrap interval over the found events. With verdicts the model runs as adapt "
        "prints it, re-ranked by them (--feedback); ⁿ: scored without that re-ranking (the model trained on the "
        "verdicts only).",
        "",
        "Games where the aim is met under each footage prior weight (edgeav.prior; re-ranking the same runs), on "
        "the held-out games' val clips and on their test clips; the weight is chosen on val:",
        "",
        "| prior weight | adapted: val | adapted: test | + verdicts: val | + verdicts: test |",
        "|---|---|---|---|---|",
        *(
            f"| {w} | "
            + " | ".join(f"{len(t[k])} of {t['games']}" for k in ("val", "test", "val_fed", "test_fed"))
            + " |"
            for w, t in res["by_prior_weight"].items()
        ),
        "",
        "Reproduce: `python -m benchmarks.adapt_events --game GAME` for each game, then "
        "`python -m benchmarks.adapt_events --summary`",
    ]
    write_result("adapt_events_summary", res, "\n".join(lines) + "\n", out)
    return res


def held_out_game(root: Path, game: str) -> tuple[dict[str, list], str]:
    """The game's clips per split ({train, val, test}) and its blind prior (its most frequent train effect)."""
    from edgeav_train.corpus import event_counts, load_clips

    clips = {split: [c for c in load_clips(root, split) if c.game == game] for split in ("train", "val", "test")}
    counts = event_counts(root, "train")[game]
    return clips, max(counts, key=counts.get)


def main(argv: list[str] | None = None) -> dict:
    from benchmarks.adapt import _link_files
    from benchmarks.value import corpus_bank
    from edgeav.adapt import AdaptConfig
    from edgeav.bank import SoundBank
    from edgeav.feedback import FeedbackStore
    from edgeav_train.corpus import corpus_root
    from edgeav_train.events import EventTrainConfig

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--game", default="pathological")
    ap.add_argument("--model", default="student")
    ap.add_argument("--corpus", default=None)
    ap.add_argument("--cache25", default=".cache/gameplay-25", help="the corpus's frame-rate cache")
    ap.add_argument("--fingerprints", default=".cache/gameplay", help="detections folder, or the 5 fps cache")
    ap.add_argument("--head-steps", type=int, default=800)
    ap.add_argument("--pool", type=int, default=EventTrainConfig.pool, help="the held-out head's pooling")
    ap.add_argument("--stem", type=int, default=EventTrainConfig.stem, help="the held-out head's first level")
    ap.add_argument("--adapt-steps", type=int, default=AdaptConfig.steps, help="edgeav adapt's window steps")
    ap.add_argument("--event-steps", type=int, default=AdaptConfig.event_steps, help="edgeav adapt's event head steps")
    ap.add_argument("--verdicts", type=int, default=100)
    ap.add_argument("--reviewed", type=int, default=100, help="verdicts on review cards (0: none)")
    seed_help = "edgeav adapt's seed (the simulated verdicts judge the same events under every seed)"
    ap.add_argument("--seed", type=int, default=AdaptConfig.seed, help=seed_help)
    ap.add_argument("--threads", type=int, default=2, help="CPU threads for the held-out head's training")
    ap.add_argument("--work", default="runs/logo-events")
    ap.add_argument("--bank-cache", default=".cache/value")
    ap.add_argument("--score-only", action="store_true", help="score the models a previous run adapted, as they are")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--summary", action="store_true", help="only the table over every game measured in --out")
    a = ap.parse_args(argv)
    if a.summary:
        return summary(a.out)
    root = corpus_root(a.corpus)
    work = Path(a.work) / a.game
    work.mkdir(parents=True, exist_ok=True)
    clips, prior = held_out_game(root, a.game)
    train, test, val = clips["train"], clips["test"], clips["val"]  # the prior weight is chosen on val
    footage = _link_files([c.video for c in train], work / "footage", root / "clips" / a.game)
    without = head_without(a.game, a, work, root)
    adapt_plain = adapted(without, footage, root, work / "adapted", a)
    plain_bank = corpus_bank(adapt_plain["model"], root, Path(a.bank_cache))
    bank = SoundBank.load(plain_bank)
    verdict_file = work / "verdicts.jsonl"
    if not verdict_file.exists():
        cache25 = work / "adapted" / "cache-events"
        FeedbackStore(verdict_file).append(
            simulated_verdicts(adapt_plain["model"], cache25, train, bank, a.verdicts, seed=0)
        )
    adapt_fb = adapted(without, footage, root, work / "adapted-feedback", a, str(verdict_file))
    # adapted + verdicts is run as adapt prints it: its model re-ranked by the verdicts (--feedback)
    measured = [
        ("without the game", without, ""),
        ("adapted", adapt_plain["model"], ""),
        ("adapted + verdicts", adapt_fb["model"], feedback_file(adapt_fb)),
        ("adapted + verdicts, not re-ranked", adapt_fb["model"], ""),
    ]
    review_file, adapt_rv = work / "verdicts-reviewed.jsonl", None
    if a.reviewed:
        if not review_file.exists():
            FeedbackStore(review_file).append(reviewed_verdicts(adapt_plain["model"], plain_bank, train, a.reviewed))
        adapt_rv = adapted(without, footage, root, work / "adapted-reviewed", a, str(review_file))
        measured += [
            ("adapted + reviewed verdicts", adapt_rv["model"], feedback_file(adapt_rv)),
            ("adapted + reviewed verdicts, not re-ranked", adapt_rv["model"], ""),
        ]
    rows = {}
    for name, model, fb in [*measured, ("shipped (saw every game; reference)", a.model, "")]:
        rows[name] = scored(model, corpus_bank(model, root, Path(a.bank_cache)), test, prior, fb)
        print(name, {k: v for k, v in rows[name].items() if k != "found_sounds"}, flush=True)
    val_rows = {
        name: scored(model, corpus_bank(model, root, Path(a.bank_cache)), val, prior, fb)
        for name, model, fb in measured[1:]
    }
    adaptations = (("adapted", adapt_plain), ("adapted + verdicts", adapt_fb), ("adapted + reviewed", adapt_rv))
    res = {
        "game": a.game,
        "head_steps": a.head_steps,
        "head_pool": a.pool,
        "head_stem": a.stem,
        "adapt_steps": a.adapt_steps,
        "event_steps": a.event_steps,
        "seed": a.seed,
        "footage_clips": len(train),
        "footage_minutes": adapt_plain["report"]["footage_minutes"],
        "library": adapt_plain["report"]["library"]["files"],
        "adapt_seconds": adapt_plain["seconds"],
        "adapt_feedback_seconds": adapt_fb["seconds"],
        "adapt_breakdown_s": adapt_plain["report"]["seconds"],
        "verdicts": len(FeedbackStore(verdict_file).load()),
        **(reviewed_summary(FeedbackStore(review_file).load(), adapt_rv) if adapt_rv else {}),
        "thresholds": {
            name: r["report"]["event_head"]["onset_threshold"]
            for name, r in adaptations
            if r and r["report"]["event_head"]
        },
        "test_clips": len(test),
        "test_events": sum(len(json.loads(c.events.read_text())["sound_events"]) for c in test),
        "rows": rows,
        "val_clips": len(val),
        "val_rows": val_rows,
    }
    write_result(f"adapt_events-{a.game}", res, markdown(res, command_line("adapt_events", argv)), a.out)
    return res


if __name__ == "__main__":
    main()
