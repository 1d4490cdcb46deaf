"""The value report: a cue sheet scored against what really plays (an event log, an editor's cue sheet, the
accepted verdicts). A suggestion matches a true event when it starts within ±tolerance of it, each matched at most
once (closest pairs first); then: precision, recall, F1, the right sound at top-1 and within the top 5, the right
category, false alarms per minute, per sound and per category; a JSON and a one-page HTML summary with the
timeline of hits and misses."""

from __future__ import annotations

import html
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeav.cues import Cue


@dataclass(frozen=True)
class Match:
    predicted: Cue
    truth: Cue

    @property
    def right_sound(self) -> bool:
        return self.predicted.sound == self.truth.sound

    @property
    def right_top5(self) -> bool:
        return self.truth.sound in (self.predicted.sound, *self.predicted.alternatives[:4])

    @property
    def right_category(self) -> bool:
        return bool(self.truth.category) and self.predicted.category == self.truth.category


def match_times(predicted: list[float], truth: list[float], tolerance_s: float) -> list[tuple[int, int]]:
    """(predicted index, true index) of the one-to-one matches within ±tolerance, closest pairs first."""
    pairs = sorted(
        (abs(p - q), i, j)
        for i, p in enumerate(predicted)
        for j, q in enumerate(truth)
        if abs(p - q) <= tolerance_s + 1e-9
    )
    used_p, used_t, out = set(), set(), []
    for _, i, j in pairs:
        if i not in used_p and j not in used_t:
            used_p.add(i)
            used_t.add(j)
            out.append((i, j))
    return out


def match(predicted: list[Cue], truth: list[Cue], tolerance_s: float) -> list[Match]:
    """One-to-one matches within ±tolerance, closest pairs first."""
    pairs = match_times([p.t for p in predicted], [q.t for q in truth], tolerance_s)
    return sorted((Match(predicted[i], truth[j]) for i, j in pairs), key=lambda m: m.truth.t)


def _ratio(a: int, b: int) -> float:
    return round(a / b, 4) if b else 0.0


def score(predicted: list[Cue], truth: list[Cue], tolerance_ms: float = 80.0, minutes: float | None = None) -> dict:
    """The report as a dict (see the module docstring); `minutes` of footage (default: up to the last cue)."""
    matches = match(predicted, truth, tolerance_ms / 1000)
    tp, n_pred, n_true = len(matches), len(predicted), len(truth)
    precision, recall = _ratio(tp, n_pred), _ratio(tp, n_true)
    if minutes is None:
        minutes = max([c.t for c in (*predicted, *truth)], default=0.0) / 60
    report: dict[str, Any] = {
        "tolerance_ms": tolerance_ms,
        "minutes": round(minutes, 3),
        "predicted": n_pred,
        "true_events": n_true,
        "matched": tp,
        "precision": precision,
        "recall": recall,
        "f1": round(2 * precision * recall / (precision + recall), 4) if precision + recall else 0.0,
        "top1_at_matched": _ratio(sum(m.right_sound for m in matches), tp),
        "top5_at_matched": _ratio(sum(m.right_top5 for m in matches), tp),
        "category_at_matched": _ratio(sum(m.right_category for m in matches), tp),
        "found_and_right": _ratio(sum(m.right_sound for m in matches), n_true),
        "false_alarms_per_minute": round((n_pred - tp) / minutes, 2) if minutes else 0.0,
    }
    for key, attr in (("per_sound", "sound"), ("per_category", "category")):
        table: dict[str, dict[str, int]] = defaultdict(lambda: {"events": 0, "found": 0, "right": 0})
        for q in truth:
            table[getattr(q, attr) or "?"]["events"] += 1
        for m in matches:
            row = table[getattr(m.truth, attr) or "?"]
            row["found"] += 1
            row["right"] += m.right_sound if attr == "sound" else m.right_category
        report[key] = dict(sorted(table.items(), key=lambda kv: -kv[1]["events"]))
    report["_matches"] = matches
    return report


def timeline_svg(predicted: list[Cue], truth: list[Cue], matches: list[Match], seconds: float, width: int = 900) -> str:
    """Hits and misses over time: true events above (green found-and-right, amber found, red missed), suggestions
    below (grey: false alarms)."""
    scale = (width - 20) / max(seconds, 1e-6)
    found = {id(m.truth): m for m in matches}
    used = {id(m.predicted) for m in matches}
    marks = []
    for q in truth:
        m = found.get(id(q))
        color = "#2e7d32" if m and m.right_sound else "#f9a825" if m else "#c62828"
        marks.append(
            f'<line x1="{10 + q.t * scale:.1f}" y1="10" x2="{10 + q.t * scale:.1f}" y2="40" '
            f'stroke="{color}" stroke-width="2"><title>{html.escape(q.sound)} at {q.t:.2f} s</title></line>'
        )
    for p in predicted:
        color = "#1565c0" if id(p) in used else "#9e9e9e"
        marks.append(
            f'<line x1="{10 + p.t * scale:.1f}" y1="50" x2="{10 + p.t * scale:.1f}" y2="80" '
            f'stroke="{color}" stroke-width="2"><title>{html.escape(p.sound)} at {p.t:.2f} s</title></line>'
        )
    ticks = "".join(
        f'<text x="{10 + s * scale:.1f}" y="96" font-size="10">{s:.0f}s</text>'
        for s in range(0, int(seconds) + 1, max(1, int(seconds) // 10 or 1))
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="100">'
        f'<rect x="10" y="45" width="{width - 20}" height="1" fill="#ccc"/>{"".join(marks)}{ticks}</svg>'
    )


def report_html(report: dict, predicted: list[Cue], truth: list[Cue], title: str) -> str:
    """A one-page summary a manager can read: the headline figures, the timeline, the sounds most often missed."""
    r = report
    head = [
        ("events matched", f"{r['matched']} of {r['true_events']} (recall {r['recall']:.0%})"),
        ("suggestions that hit an event", f"{r['matched']} of {r['predicted']} (precision {r['precision']:.0%})"),
        ("F1", f"{r['f1']:.2f}"),
        ("right sound at matched events", f"{r['top1_at_matched']:.0%} (top 5: {r['top5_at_matched']:.0%})"),
        ("right category at matched events", f"{r['category_at_matched']:.0%}"),
        ("false alarms per minute", f"{r['false_alarms_per_minute']:.1f}"),
    ]
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in head)
    sounds = "".join(
        f"<tr><td>{html.escape(s)}</td><td>{v['events']}</td><td>{v['found']}</td><td>{v['right']}</td></tr>"
        for s, v in list(r["per_sound"].items())[:15]
    )
    svg = timeline_svg(predicted, truth, r["_matches"], r["minutes"] * 60 or 1.0)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font:14px sans-serif;margin:24px;max-width:940px}} th{{text-align:left;padding-right:16px}}
td{{padding-right:16px}} .key span{{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px}}</style>
</head><body><h1>{html.escape(title)}</h1>
<p>Suggestions scored against what really plays, matched within ±{r["tolerance_ms"]:.0f} ms, over
{r["minutes"]:.1f} minutes of footage.</p><table>{rows}</table><h2>Timeline</h2>{svg}
<p class="key">true events:<span style="background:#2e7d32"></span>found, right sound
<span style="background:#f9a825"></span>found, other sound<span style="background:#c62828"></span>missed;
suggestions:<span style="background:#1565c0"></span>on an event<span style="background:#9e9e9e"></span>false alarm</p>
<h2>Sounds that play most</h2><table><tr><th>sound</th><th>events</th><th>found</th><th>right</th></tr>{sounds}
</table></body></html>
"""


def write_report(
    report: dict, predicted: list[Cue], truth: list[Cue], out: str | Path, title: str
) -> tuple[Path, Path]:
    """OUT.json and OUT.html, atomically."""
    from edgeav.atomic import atomic_path, write_json

    out = Path(out)
    stem = out.with_suffix("") if out.suffix in (".json", ".html") else out
    js, page = stem.with_suffix(".json"), stem.with_suffix(".html")
    write_json(js, {k: v for k, v in report.items() if not k.startswith("_")})
    with atomic_path(page) as tmp:
        tmp.write_text(report_html(report, predicted, truth, title))
    return js, page
