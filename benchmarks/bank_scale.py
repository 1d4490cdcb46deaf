"""Search time against bank size — 1k to 1M sounds — for exact numpy search (what `run` uses below 100k), FAISS
exact (IndexFlatIP) and FAISS approximate (HNSW, IVF), with recall@10 against exact search. Queries are searched one
at a time, as a live stream does. Embeddings are synthetic (the corpus has 207 sounds): unit vectors drawn around
cluster centres, as sound libraries cluster by kind; each query is a perturbed bank entry.
Writes results/bank_scale.{json,md}.

    python -m benchmarks.bank_scale --sizes 1000 10000 100000 1000000
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.common import RESULTS, command_line, machine, time_fn, write_result


def synthetic_bank(n: int, dim: int, rng: np.random.Generator, n_clusters: int = 256) -> np.ndarray:
    centres = rng.standard_normal((n_clusters, dim)).astype(np.float32)
    x = centres[rng.integers(0, n_clusters, n)] + 0.7 * rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def recall_at(found: np.ndarray, exact: np.ndarray, k: int = 10) -> float:
    return float(np.mean([len(set(f[:k]) & set(e[:k])) / k for f, e in zip(found, exact)]))


def measure(n: int, a, rng) -> dict:
    import faiss

    from edgeav.bank import SoundBank

    faiss.omp_set_num_threads(a.threads)
    emb = synthetic_bank(n, a.dim, rng)
    q = emb[rng.integers(0, n, a.queries)] + 0.3 * rng.standard_normal((a.queries, a.dim)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    bank = SoundBank([str(i) for i in range(n)], [""] * n, emb, [""] * n)
    exact = bank.search(q, 10, backend="numpy")[1]
    row = {"n": n, "memory_mb": emb.nbytes / 1e6}

    def per_query(search):
        it = iter(range(10**9))
        return time_fn(lambda: search(q[next(it) % len(q)][None]), a.warmup, a.runs)

    row["numpy exact"] = {**per_query(lambda x: bank.search(x, 10, backend="numpy")), "recall@10": 1.0}
    row["faiss flat (exact)"] = {
        **per_query(lambda x: bank.search(x, 10, backend="faiss")),
        "recall@10": recall_at(bank.search(q, 10, backend="faiss")[1], exact),
    }
    t0 = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(a.dim, 32, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efSearch = 64
    hnsw.add(emb)
    build = time.perf_counter() - t0
    row["faiss hnsw (M 32, ef 64)"] = {
        **per_query(lambda x: hnsw.search(x, 10)),
        "build_s": build,
        "recall@10": recall_at(hnsw.search(q, 10)[1], exact),
    }
    nlist = max(1, int(4 * np.sqrt(n)))
    if n >= 39 * nlist:  # FAISS wants ≥ 39 training points per list
        t0 = time.perf_counter()
        ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(a.dim), a.dim, nlist, faiss.METRIC_INNER_PRODUCT)
        ivf.train(emb[rng.choice(n, min(n, 256 * nlist), replace=False)])
        ivf.add(emb)
        ivf.nprobe = 16
        build = time.perf_counter() - t0
        row[f"faiss ivf (nlist {nlist}, nprobe 16)"] = {
            **per_query(lambda x: ivf.search(x, 10)),
            "build_s": build,
            "recall@10": recall_at(ivf.search(q, 10)[1], exact),
        }
    print(n, {k: round(v["p50_ms"], 3) for k, v in row.items() if isinstance(v, dict)}, flush=True)
    return row


def markdown(result: dict) -> str:
    lines = [
        f"Machine: {result['machine']['cpu']}, {result['threads']} threads; {result['dim']}-d unit vectors, one query "
        f"at a time, top-10; p50 over {result['runs']} queries. Command: `{result['command']}`.",
        "",
        "| bank size | method | p50 ms | p95 ms | queries/s | recall@10 vs exact | build s |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        for name, r in row.items():
            if isinstance(r, dict):
                lines.append(
                    f"| {row['n']:,} | {name} | {r['p50_ms']:.3f} | {r['p95_ms']:.3f} | {r['windows_per_s']:.0f} "
                    f"| {r['recall@10']:.3f} | {r.get('build_s', 0):.1f} |"
                )
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", nargs="+", type=int, default=[1000, 10_000, 100_000, 1_000_000])
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(RESULTS))
    a = ap.parse_args(argv)
    rng = np.random.default_rng(a.seed)
    result = {
        "machine": machine(),
        "threads": a.threads,
        "dim": a.dim,
        "runs": a.runs,
        "rows": [measure(n, a, rng) for n in a.sizes],
        "command": command_line("bank_scale", argv),
    }
    md = markdown(result)
    write_result("bank_scale", result, md, a.out)


if __name__ == "__main__":
    main()
