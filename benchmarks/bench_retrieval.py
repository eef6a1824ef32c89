"""Exact top-k search, n queries against n items: FAISS IndexFlatIP and ExactIndex vs blocked NumPy brute force.

Usage: python benchmarks/bench_retrieval.py [--sizes 10000,100000] [--dim 64] [--k 10] [--tiny]
Prints seconds per method and FAISS's speed-up over NumPy; NumPy works in blocks (never an n x n matrix).
"""

from __future__ import annotations

import argparse
import time

import faiss
import numpy as np
from _tiny import parse_args

from paxion.retrieval.index import ExactIndex, blocked_topk


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def bench(n: int, dim: int, k: int) -> dict[str, float]:
    """Seconds of each method on n random unit vectors searched against themselves."""
    rng = np.random.default_rng(0)
    items = rng.normal(size=(n, dim)).astype(np.float32)
    items /= np.linalg.norm(items, axis=1, keepdims=True)
    queries = items[rng.permutation(n)]
    flat = faiss.IndexFlatIP(dim)
    flat.add(items)
    faiss_s, _ = _timed(lambda: flat.search(queries, k))
    exact_s, (_, exact_ids) = _timed(lambda: ExactIndex(items).search(queries, k))
    numpy_s, (_, numpy_ids) = _timed(lambda: blocked_topk(queries, items, k))
    agree = float(np.mean(exact_ids == numpy_ids))
    return {"faiss": faiss_s, "exact": exact_s, "numpy": numpy_s, "agree": agree}


def main() -> None:
    """Run the benchmark for each size and print one line per size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated numbers of items (= queries)")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--k", type=int, default=10)
    args = parse_args(parser, {"sizes": "300", "dim": 8})
    print(f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads, d={args.dim}, k={args.k}")
    for n in (int(s) for s in args.sizes.split(",")):
        r = bench(n, args.dim, args.k)
        print(
            f"n={n:>7} x {n:<7} faiss IndexFlatIP {r['faiss']:8.2f} s | ExactIndex {r['exact']:8.2f} s | "
            f"numpy blocked {r['numpy']:8.2f} s | speed-up faiss {r['numpy'] / r['faiss']:5.1f}x, "
            f"ExactIndex {r['numpy'] / r['exact']:5.1f}x | same ids {100 * r['agree']:.2f}%"
        )


if __name__ == "__main__":
    main()
