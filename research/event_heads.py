"""Which event head geometry? Heads trained label-free under one schedule (`edgeav train events --fresh`, 2500
steps × 96 frames, the same fingerprinted starts; a fine-tuned row continues one of them), each row a run folder:
its geometry, multiply-accumulates per frame (convs and layers, counted by hooks on one pass), torch time per
frame at one thread (frames encoded in runs of 16 as `edgeav run` does on a file, rounds interleaved over the
heads) and the val split's detection at the threshold calibrated there (the run's done.json) — model selection on
val, never test.

Writes results/NAME.{json,md} (`--name`, default event_heads). `--recount-macs` re-counts the MACs of a written
NAME.json from each row's geometry alone (a head of that geometry, untrained: MACs do not depend on weights),
keeping its measured times and val figures.

    python -m research.event_heads --row 'NAME=runs/ev-ctrl' --row ...
    python -m research.event_heads --name NAME --recount-macs
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import call_times, command_line, machine, write_result
from research import RESULTS

BATCH = 16


def macs_per_frame(head: torch.nn.Module, frames: torch.Tensor) -> int:
    """Multiply-accumulates of convs and linear layers for one frame's code plus one temporal-head call."""
    total = [0]

    def count(mod: torch.nn.Module, _inp: tuple, out: torch.Tensor) -> None:
        if isinstance(mod, torch.nn.Conv2d | torch.nn.Conv1d):
            k = int(np.prod(mod.kernel_size)) * mod.in_channels // mod.groups
            total[0] += out.numel() * k
        elif isinstance(mod, torch.nn.Linear):
            total[0] += out.numel() * mod.in_features

    hooks = [m.register_forward_hook(count) for m in head.modules()]
    try:
        with torch.no_grad():
            codes, _ = head.encode_frames(frames[:, :2], per_frame=False)  # one frame's code, every conv a module
            head.from_codes(torch.zeros(1, head.spec.length, codes.shape[-1]))
    finally:
        for h in hooks:
            h.remove()
    return total[0]


def geometry(run: Path) -> dict:
    from edgeav.models import load_model

    m = load_model(str(run / "model.safetensors"))
    card = m.card.provenance.get("events", {})
    return {
        "model": m,
        "widths": list(m.cfg.event_widths),
        "context": [m.events.spec.before, m.events.spec.after],
        "pool": m.events.pool_size,
        "first": f"{m.cfg.event_stem}×{m.cfg.event_stem} patch" if m.cfg.event_stem > 1 else "3×3, stride 2",
        "stem": m.cfg.event_stem,
        "steps": card.get("steps"),
        "val": json.loads((run / "done.json").read_text())["val_detection"],
    }


def main(argv: list[str] | None = None) -> dict:
    from edgeav.models.events import pooled_tensor

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--row", action="append", default=[], help="NAME=RUN_FOLDER (model.safetensors, done.json)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=40)
    ap.add_argument("--name", default="event_heads", help="results/NAME.{json,md}")
    ap.add_argument("--recount-macs", action="store_true", help="re-count the MACs of results/NAME.json, nothing else")
    a = ap.parse_args(argv)
    if a.recount_macs:
        return recount_macs(a.name)
    if not a.row:
        ap.error("give at least one --row NAME=RUN_FOLDER")
    torch.set_num_threads(1)
    rows = {name: geometry(Path(run)) for name, run in (r.split("=", 1) for r in a.row)}
    any_model = next(iter(rows.values()))["model"]
    w, h = any_model.cfg.frame_size
    frames = np.random.default_rng(0).integers(0, 256, (1, BATCH + 1, h, w, 3), dtype=np.uint8)
    times: dict[str, list[float]] = {k: [] for k in rows}
    for _ in range(a.rounds):
        for name, r in rows.items():
            head = r["model"].events.eval()

            def step(head=head) -> None:
                with torch.no_grad():
                    codes, _ = head.encode_pooled(pooled_tensor(frames, head.pool_size))
                    windows = codes[0].unfold(0, head.spec.length, 1).permute(0, 2, 1)
                    head.from_codes(windows)

            times[name].append(float(np.median(call_times(step, 5, a.calls))) / BATCH)
    out = {}
    for name, r in rows.items():
        head = r.pop("model").events
        r["macs_per_frame"] = macs_per_frame(head, torch.rand(1, 2, 3, h, w))
        r["torch_ms_per_frame_1_thread"] = round(float(np.median(times[name])), 4)
        out[name] = r
    res = {"machine": machine(), "rows": out}
    write_result(a.name, res, markdown(res, command_line("research.event_heads", argv)), RESULTS)
    return res


def recount_macs(name: str) -> dict:
    """MACs of each row of results/NAME.json from a head of its geometry; the rest of the file as measured."""
    from edgeav.models import load_model
    from edgeav.models.events import EventHead

    path = RESULTS / f"{name}.json"
    res = json.loads(path.read_text())
    cfg = load_model("student").cfg  # the shipped model's frame size and code widths
    w, h = cfg.frame_size
    for r in res["rows"].values():
        stem = r.get("stem") or (int(r["first"].split("×")[0]) if "patch" in r.get("first", "") else 1)
        before, after = r["context"]
        head = EventHead(
            tuple(r["widths"]), cfg.event_dim, cfg.embed_dim, before, after, r["pool"], cfg.event_fps, stem
        ).eval()
        r["stem"] = stem
        r["macs_per_frame"] = macs_per_frame(head, torch.rand(1, 2, 3, h, w))
    cmd = (RESULTS / f"{name}.md").read_text().rsplit("Command: `", 1)[1].split("`")[0]
    write_result(name, res, markdown(res, cmd), RESULTS)
    return res


def markdown(res: dict, cmd: str) -> str:
    lines = [
        "Event head geometries, each trained label-free under one schedule (`edgeav train events --fresh`, 2500 "
        "steps × 96 frames, the same fingerprinted starts; a row that says so is fine-tuned after it); detection "
        "on the corpus's val clips at the threshold calibrated there (model selection); torch ms per frame at one "
        "thread, frames in runs of 16, median of interleaved rounds "
        f"({res['machine']['cpu']}).",
        "",
        "| head | conv widths | first level | context (frames before, after) | pool | MMACs per frame | "
        "torch ms per frame | val P / R / F1 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in res["rows"].items():
        v = r["val"]
        lines.append(
            f"| {name} | {', '.join(map(str, r['widths']))} | {r.get('first', '3×3, stride 2')} | "
            f"{r['context'][0]}, {r['context'][1]} | {r['pool']} | "
            f"{r['macs_per_frame'] / 1e6:.2f} | {r['torch_ms_per_frame_1_thread']:.3f} | "
            f"{v['precision']:.2f} / {v['recall']:.2f} / **{v['f1']:.3f}** |"
        )
    return "\n".join(lines + ["", f"Command: `{cmd}`"])


if __name__ == "__main__":
    main()
