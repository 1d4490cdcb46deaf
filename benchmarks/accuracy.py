"""Accuracy of each model × precision on the corpus test split, through the backend that would run it: correlation
accuracy, top-1/5/10 file and category accuracy (over events, macro over effects), retrieval recall@k, beside chance
and the blind prior. A student is searched against the bank its teacher indexed, as `run` does (one bank serves
both); its own audio encoder's bank is a second row.
Writes results/accuracy.{json,md}.

    python -m benchmarks.accuracy --models teacher student student_small
"""

from __future__ import annotations

import argparse

from benchmarks.common import RESULTS, command_line, int8_export, write_result


def evaluate_variants(model: str, a, inputs, vcache) -> dict:
    from edgeav.backends import load_backend
    from edgeav.errors import EdgeavError
    from edgeav.models import load_model
    from edgeav_train.evaluate import BackendModel, evaluate

    m = load_model(model)
    fp32, int8 = int8_export(model, a.exports, a.corpus, a.calib_windows)
    # as `run` deploys it: a student's bank is indexed by its teacher (edgeav.bank.bank_encoder), a teacher's
    # (also at INT8) by its own audio encoder
    teacher = m.card.teacher
    bank_model = load_model(teacher) if teacher else None
    rows = {"torch fp32": evaluate(m, inputs, a.corpus, vcache, bank_model=bank_model)}
    if teacher:
        rows["torch fp32, own audio bank"] = evaluate(m, inputs, a.corpus, vcache)
    # TensorRT's Q/DQ form, computed exactly as TensorRT does (int32 accumulation: edgeav.backends.onnx_backend),
    # and through ONNX Runtime's fused int8 CPU kernels, which saturate on CPUs without VNNI
    rows["onnxruntime int8"] = evaluate(
        BackendModel(load_backend(int8, "onnx", "int8", a.threads)), inputs, a.corpus, vcache, bank_model=bank_model
    )
    rows["onnxruntime int8, fused CPU kernels"] = evaluate(
        BackendModel(load_backend(int8, "onnx", "int8", a.threads, exact_qdq=False)),
        inputs,
        a.corpus,
        vcache,
        bank_model=bank_model,
    )
    _, int8_cpu = int8_export(model, a.exports, a.corpus, a.calib_windows, "int8-cpu")
    rows["onnxruntime int8-cpu"] = evaluate(
        BackendModel(load_backend(int8_cpu, "onnx", "int8", a.threads)), inputs, a.corpus, vcache, bank_model=bank_model
    )
    try:
        load_backend(fp32, "onnx", "fp16", a.threads)
    except EdgeavError as e:
        rows["onnxruntime fp16"] = {"status": "unavailable", "reason": e.what}
    for name, r in rows.items():
        if "model" in r:
            print(
                model,
                name,
                f"top-1 {r['model']['top1_file']:.3f}, macro {r['model']['top1_file_macro']:.3f}, "
                f"top-5 {r['model']['top5_file']:.3f}, corr {r['correlation']['correlation_acc']:.3f}",
                flush=True,
            )
    return rows


def markdown(result: dict) -> str:
    cols = [
        ("top1_file", "top-1"),
        ("top1_file_macro", "macro top-1"),
        ("top5_file", "top-5"),
        ("top10_file", "top-10"),
        ("top1_category", "cat. top-1"),
    ]
    lines = [
        f"Test split: {result['n_queries']} sound events, {result['n_effects']} effects, bank of "
        f"{result['bank_size']}. Command: `{result['command']}`.",
        "",
        "| model | variant | " + " | ".join(c for _, c in cols) + " | corr. acc | v→a R@10 |",
        "|---|---|" + "---|" * (len(cols) + 2),
    ]
    first = None
    for model, rows in result["models"].items():
        for name, r in rows.items():
            if "model" not in r:
                lines.append(f"| {model} | {name} | unavailable: {r['reason']} |" + " |" * (len(cols) + 1))
                continue
            first = first or r
            lines.append(
                f"| {model} | {name} | "
                + " | ".join(f"{r['model'][k]:.3f}" for k, _ in cols)
                + f" | {r['correlation']['correlation_acc']:.3f} | {r['retrieval']['v2a_R@10']:.3f} |"
            )
    for ref in ("blind_prior", "chance"):
        lines.append(
            f"| {ref.replace('_', ' ')} | – | "
            + " | ".join(f"{first[ref][k]:.3f}" for k, _ in cols)
            + f" | {'–' if ref == 'blind_prior' else '0.500'} | – |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=["teacher", "student", "student_mobile", "student_small"])
    ap.add_argument("--corpus", default=None, help="corpus root (default ../shared/data/gameplay)")
    ap.add_argument("--exports", default="exports")
    ap.add_argument("--calib-windows", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--eval-cache", default=".cache/eval")
    ap.add_argument("--out", default=str(RESULTS))
    a = ap.parse_args(argv)

    import torch

    from edgeav_train.evaluate import VisualCache, load_inputs

    torch.set_num_threads(a.threads)
    inputs = load_inputs(a.corpus, (128, 96), (0.2, 0.4), cache_dir=a.eval_cache)
    vcache = VisualCache(a.eval_cache)
    models = {m: evaluate_variants(m, a, inputs, vcache) for m in a.models}
    any_row = next(r for rows in models.values() for r in rows.values() if "model" in r)
    result = {
        "models": models,
        "n_queries": any_row["n_queries"],
        "n_effects": any_row["n_effects"],
        "bank_size": any_row["bank_size"],
        "command": command_line("accuracy", argv),
    }
    md = markdown(result)
    write_result("accuracy", result, md, a.out)


if __name__ == "__main__":
    main()
