"""Tables and plots from the results JSON of one regeneration: the deployment summary (Ultralytics style: format,
status, size, accuracy, ms per window, windows/s), the per-model table (parameters, MACs, size, accuracy, latency),
accuracy against latency with its Pareto front, and bank search time against bank size.

    python -m benchmarks.report
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.common import RESULTS

# latency variant → accuracy variant measuring the same artifact (ONNX fp32 has parity ~1e-7 with torch)
SAME_ACCURACY = {
    "torch fp32": "torch fp32",
    "onnxruntime fp32": "torch fp32",
    "onnxruntime int8": "onnxruntime int8",
    "onnxruntime int8, fused CPU kernels": "onnxruntime int8, fused CPU kernels",
    "onnxruntime int8-cpu": "onnxruntime int8-cpu",
    "onnxruntime fp16": "onnxruntime fp16",
    "tensorrt int8": "onnxruntime int8",
}
FORMAT = {
    "torch fp32": "PyTorch (.safetensors)",
    "onnxruntime fp32": "ONNX",
    "onnxruntime int8": "ONNX INT8 (Q/DQ, TensorRT form)",
    "onnxruntime int8, fused CPU kernels": "ONNX INT8 (Q/DQ, TensorRT form) on ORT's fused CPU kernels",
    "onnxruntime int8-cpu": "ONNX INT8 (ORT CPU form)",
    "onnxruntime fp16": "ONNX FP16",
    "tensorrt int8": "TensorRT INT8 engine",
}


def _load(out: Path, name: str) -> dict:
    p = out / f"{name}.json"
    return json.loads(p.read_text()) if p.exists() else {}


def rows(out: Path) -> list[dict]:
    """One row per model × latency variant, joined with its accuracy and the model's cost."""
    from edgeav.models import load_model
    from edgeav.models.profile import encoder_costs

    lat, acc = _load(out, "latency"), _load(out, "accuracy")
    table = []
    for model, variants in lat.get("models", {}).items():
        cost = encoder_costs(load_model(model))
        for name, r in variants.items():
            a = acc.get("models", {}).get(model, {}).get(SAME_ACCURACY[name], {})
            row = {
                "model": model,
                "variant": name,
                "format": FORMAT[name],
                "status": r["status"],
                "reason": r.get("reason", ""),
                "visual_params": cost["visual"]["params"],
                "visual_macs": cost["visual"]["macs"],
                "audio_macs": cost["audio"]["macs"],
            }
            if r["status"] == "ok":
                row.update(
                    size_mb=r["file_mb"],
                    p50_ms=r["visual"]["p50_ms"],
                    p95_ms=r["visual"]["p95_ms"],
                    windows_per_s=r["visual"]["windows_per_s"],
                )
            if "model" in a and r["status"] == "ok":  # an unavailable variant shows no borrowed accuracy
                m = a["model"]
                row.update(
                    top1=m["top1_file"],
                    top1_macro=m["top1_file_macro"],
                    top5=m["top5_file"],
                    corr=a["correlation"]["correlation_acc"],
                )
            table.append(row)
    return table


def _f(v, fmt):
    return format(v, fmt) if isinstance(v, (int, float)) else "–"


def _ms(v) -> str:
    """A latency in ms: three decimals below 1 ms, where the students' tenths of a millisecond differ."""
    return _f(v, ".3f" if isinstance(v, (int, float)) and v < 1 else ".2f")


def summary_md(table: list[dict], out: Path) -> str:
    lat, acc = _load(out, "latency"), _load(out, "accuracy")
    first = next((r for rows_ in acc.get("models", {}).values() for r in rows_.values() if "model" in r), None)
    prior = (
        f"; blind prior top-1 {first['blind_prior']['top1_file']:.3f}, "
        f"macro {first['blind_prior']['top1_file_macro']:.3f}"
        if first
        else ""
    )
    head = (
        f"Machine: {lat.get('machine', {}).get('cpu', '?')}, {lat.get('threads', '?')} threads, batch 1. Accuracy: "
        f"top-1 / macro top-1 / top-5 file accuracy on the test split{prior}. ms per window: the visual encoder, "
        f"p50. Regenerate: `python -m benchmarks.run_all`."
    )
    lines = [
        head,
        "",
        "| model | format | status | size (MB) | top-1 | macro top-1 | top-5 | corr. acc | ms / window | windows/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table:
        status = "✅" if r["status"] == "ok" else f"❌ {r['reason']}"
        lines.append(
            f"| {r['model']} | {r['format']} | {status} | {_f(r.get('size_mb'), '.2f')} | {_f(r.get('top1'), '.3f')} | "
            f"{_f(r.get('top1_macro'), '.3f')} | {_f(r.get('top5'), '.3f')} | {_f(r.get('corr'), '.3f')} | "
            f"{_ms(r.get('p50_ms'))} | {_f(r.get('windows_per_s'), '.0f')} |"
        )
    return "\n".join(lines) + "\n"


def models_md(table: list[dict]) -> str:
    teacher = next((r for r in table if r["model"] == "teacher" and r["variant"] == "torch fp32"), None)
    lines = [
        "| model | precision (backend) | visual params | visual MMAC | MAC ratio to teacher | size (MB) | top-1 | "
        "macro top-1 | top-5 | corr. acc | CPU p50 / p95 ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table:
        if r["status"] != "ok":
            continue
        ratio = f"1/{teacher['visual_macs'] / r['visual_macs']:.0f}" if teacher and r["model"] != "teacher" else "1"
        lines.append(
            f"| {r['model']} | {r['variant']} | {r['visual_params'] / 1e6:.2f} M | {r['visual_macs'] / 1e6:.1f} | "
            f"{ratio} | {_f(r.get('size_mb'), '.2f')} | {_f(r.get('top1'), '.3f')} | "
            f"{_f(r.get('top1_macro'), '.3f')} | "
            f"{_f(r.get('top5'), '.3f')} | {_f(r.get('corr'), '.3f')} | {_ms(r['p50_ms'])} / {_ms(r['p95_ms'])} |"
        )
    return "\n".join(lines) + "\n"


def pareto(points: list[tuple[float, float]]) -> list[int]:
    """Indices of points no other point beats on both lower latency and higher accuracy, by latency."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -1.0
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def plots(table: list[dict], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    pts = [r for r in table if r.get("p50_ms") and r.get("top1") is not None]
    if pts:
        acc = _load(out, "accuracy")
        prior = next(
            (
                r["blind_prior"]
                for rows_ in acc.get("models", {}).values()
                for r in rows_.values()
                if "blind_prior" in r
            ),
            None,
        )
        models = sorted({r["model"] for r in pts})
        variants = sorted({r["variant"] for r in pts})
        markers = dict(zip(variants, "osD^vPX*"))
        colors = dict(zip(models, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
        for ax, key, label in (
            (axes[0], "top1", "top-1 file accuracy"),
            (axes[1], "top1_macro", "macro top-1 file accuracy"),
        ):
            xy = [(r["p50_ms"], r[key]) for r in pts]
            for r, (x, y) in zip(pts, xy):
                ax.scatter(
                    x,
                    y,
                    s=40,
                    marker=markers[r["variant"]],
                    color=colors[r["model"]],
                    label=f"{r['model']} · {r['variant']}",
                )
            front = pareto(xy)
            ax.plot([xy[i][0] for i in front], [xy[i][1] for i in front], "k--", lw=1, label="Pareto front")
            if prior:
                ax.axhline(
                    prior["top1_file" if key == "top1" else "top1_file_macro"],
                    color="grey",
                    lw=0.8,
                    ls=":",
                    label="blind prior",
                )
            ax.set_xscale("log")
            ax.set_xlabel("visual encoder p50 latency, batch 1 (ms, log)")
            ax.set_ylabel(f"{label} (test split)")
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="center right", fontsize=7)
        fig.tight_layout(rect=(0, 0, 0.78, 1))
        fig.savefig(out / "accuracy_vs_latency.png", dpi=110)
        plt.close(fig)
        made.append("accuracy_vs_latency.png")
    bank = _load(out, "bank_scale")
    if bank:
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        methods = sorted({k.split(" (nlist")[0] for row in bank["rows"] for k, v in row.items() if isinstance(v, dict)})
        for meth in methods:
            xs, ys = [], []
            for row in bank["rows"]:
                for k, v in row.items():
                    if isinstance(v, dict) and k.split(" (nlist")[0] == meth:
                        xs.append(row["n"]), ys.append(v["p50_ms"])
            ax.plot(xs, ys, "o-", label=meth)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("bank size (sounds)")
        ax.set_ylabel("search p50 per query (ms)")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "bank_scale.png", dpi=120)
        plt.close(fig)
        made.append("bank_scale.png")
    return made


DOCS = [
    Path(__file__).resolve().parents[1] / "README.md",
    *sorted((Path(__file__).resolve().parents[1] / "docs").glob("*.md")),
]
SOURCES = [RESULTS, Path(__file__).resolve().parents[1] / "research" / "results"]


def sync_docs(docs: list[Path], sources: list[Path]) -> list[str]:
    """Replace each `<!-- bench:NAME -->…<!-- /bench:NAME -->` block of the docs with NAME.md from the first of
    `sources` that has it, so the docs always show the tables of the last regeneration. Returns the names synced."""
    import re

    done = []

    def put(m):
        name = m.group(1)
        src = next((d / f"{name}.md" for d in sources if (d / f"{name}.md").exists()), None)
        if src is None:
            return m.group(0)
        done.append(name)
        return f"<!-- bench:{name} -->\n{src.read_text().strip()}\n<!-- /bench:{name} -->"

    for doc in docs:
        if not doc.exists():
            continue
        text = doc.read_text()
        new = re.sub(r"<!-- bench:([\w-]+) -->.*?<!-- /bench:\1 -->", put, text, flags=re.S)
        if new != text:
            doc.write_text(new)
    return done


def readme_md(table: list[dict], out: Path) -> str:
    """The README's models table: each model as PyTorch, ONNX and ONNX INT8 (CPU form), where it runs here."""
    lat = _load(out, "latency")
    keep = {"torch fp32": "PyTorch", "onnxruntime fp32": "ONNX", "onnxruntime int8-cpu": "ONNX INT8 (CPU form)"}
    lines = [
        "| model | format | size (MB) | top-1 | macro top-1 | ms / window | windows/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in table:
        if r["variant"] in keep and r["status"] == "ok":
            lines.append(
                f"| {r['model']} | {keep[r['variant']]} | {_f(r.get('size_mb'), '.2f')} | "
                f"{_f(r.get('top1'), '.3f')} | {_f(r.get('top1_macro'), '.3f')} | {_ms(r.get('p50_ms'))} | "
                f"{_f(r.get('windows_per_s'), '.0f')} |"
            )
    foot = (
        f"Top-1 and macro top-1: the file the test split's events play, at oracle timing (each window placed at a "
        f"true event; blind prior 0.464 / 0.067). ms / window: the visual encoder, p50, batch 1, "
        f"{lat.get('threads', '?')} threads, {lat.get('machine', {}).get('cpu', '?')}. "
        f"Reproduce: `python -m benchmarks.run_all` (docs/results.md)."
    )
    return "\n".join(lines) + "\n\n" + foot + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(RESULTS))
    a = ap.parse_args(argv)
    out = Path(a.out)
    table = rows(out)
    (out / "summary.md").write_text(summary_md(table, out))
    (out / "models.md").write_text(models_md(table))
    (out / "readme_models.md").write_text(readme_md(table, out))
    made = plots(table, out)
    if out.resolve() == RESULTS.resolve():
        print(f"README and docs blocks refreshed: {', '.join(sync_docs(DOCS, SOURCES)) or 'none'}")
    print((out / "summary.md").read_text())
    print(f"plots: {', '.join(made) or 'none'}")


if __name__ == "__main__":
    main()
