#!/usr/bin/env python3
"""Attention forward+backward on one GPU, nuri against PyTorch's scaled_dot_product_attention in
one run, at the shapes of `nuri-bench-ops --device cuda --filter "gpu attention"` (12 heads of 64;
batch 8 at T = 1024, batch 2 at T = 4096; causal and full). nuri runs its exact f32 kernel and
its bf16 tensor-core kernels; PyTorch runs in f32 (its default back end for f32) and in bf16
through its flash and cuDNN back ends, each set beside nuri in the same precision. The FLOPs are
counted the same way for all (4 B H T^2 D forward, 2.5 times that backward, halved when causal),
and each figure is the median of timed steps after warm-up, synchronised. Needs a CUDA build of
nuri and PyTorch with CUDA.
"""
import argparse
import json
import pathlib
import re
import subprocess
import sys
import tempfile
import time

HEADS, HEAD_DIM = 12, 64


def run_nuri(binary):
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "nuri.json"
        subprocess.run([binary, "--device", "cuda", "--filter", "gpu attention", "--json",
                        str(out)], check=True)
        rows = json.loads(out.read_text())["rows"]
    figures = {}
    for row in rows:
        found = re.match(r"gpu attention (f32|bf16) (causal|full) B=(\d+) T=(\d+)", row["name"])
        if found:
            shape = (found[2], int(found[3]), int(found[4]))
            figures.setdefault(shape, {})[f"nuri {found[1]}"] = row["value"]
    return figures


def torch_tflops(torch, mask, batch, t, dtype, backend, steps):
    from torch.nn.attention import sdpa_kernel
    shape = (batch, HEADS, t, HEAD_DIM)
    q, k, v = (torch.randn(shape, device="cuda", dtype=dtype, requires_grad=True)
               for _ in range(3))
    grad = torch.randn(shape, device="cuda", dtype=dtype)
    causal = mask == "causal"

    def step():
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)
        out.backward(grad)
        q.grad = k.grad = v.grad = None

    times = []
    with sdpa_kernel(backend):
        for i in range(steps + 2):
            torch.cuda.synchronize()
            start = time.perf_counter()
            step()
            torch.cuda.synchronize()
            if i >= 2:
                times.append(time.perf_counter() - start)
    seconds = sorted(times)[len(times) // 2]
    forward = 4.0 * batch * HEADS * t * t * HEAD_DIM * (0.5 if causal else 1.0)
    return 3.5 * forward / seconds * 1e-12


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", default="build/bin/nuri-bench-ops")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--json", help="also write the comparison to this file")
    args = parser.parse_args()
    import torch
    from torch.nn.attention import SDPBackend
    peers = [("torch f32", torch.float32, [SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]),
             ("torch flash bf16", torch.bfloat16, [SDPBackend.FLASH_ATTENTION]),
             ("torch cudnn bf16", torch.bfloat16, [SDPBackend.CUDNN_ATTENTION])]
    nuri = run_nuri(args.bench)
    results = []
    for (mask, batch, t), ours in sorted(nuri.items()):
        row = {"mask": mask, "batch": batch, "t": t, **ours}
        for name, dtype, backend in peers:
            try:
                row[name] = torch_tflops(torch, mask, batch, t, dtype, backend, args.steps)
            except RuntimeError as error:  # a back end this GPU or build lacks
                print(f"{name} unavailable for {mask} T={t}: {error}", file=sys.stderr)
                row[name] = None
        results.append(row)
    ours = ["nuri f32", "nuri bf16"]
    print("benchmark attention fwd+bwd (GPU): TFLOP/s, and nuri / peer in the same precision")
    print(f"  {'shape':22}" + "".join(f"{name:>18}" for name in ours + [n for n, _, _ in peers]))
    for row in results:
        cells = [f"{row.get(name, float('nan')):18.2f}" for name in ours]
        for name, dtype, _ in peers:
            value = row[name]
            mine = row.get("nuri bf16" if dtype == torch.bfloat16 else "nuri f32", float("nan"))
            cells.append(f"{'n/a':>18}" if value is None
                         else f"{value:9.2f} ({mine / value:5.2f})")
        print(f"  {row['mask'] + ' B=' + str(row['batch']) + ' T=' + str(row['t']):22}"
              + "".join(cells))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
