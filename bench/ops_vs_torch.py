#!/usr/bin/python3
"""Runs nuri-bench-ops and the same workloads in PyTorch's CPU build in one run, and prints the
ratios. Both get the same thread count; each side runs twice, alternating, and keeps its best.

PyTorch here is Debian's python3-torch. It uses whatever libblas.so.3 points to, so the script
prints that first: with the reference (netlib) BLAS PyTorch would be ~10x slower and the ratio
meaningless. Debian's PyTorch 1.13 has no scaled_dot_product_attention; its peer is the math
formulation that SDPA's CPU math path computes, softmax(q k^T * scale + mask) v, with autograd.
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

from torch_peer import blas_in_use

LINEAR_SHAPES = [(4096, 1024, 4096), (4096, 4096, 1024), (1024, 1024, 1024)]
ATTENTION = [("causal", 1024), ("causal", 4096), ("full", 1024), ("full", 4096)]
HEADS, HEAD_DIM = 8, 64
# The vision stem's 3x3 stages on 8 images: (channels in, out, side, input needs a gradient).
CONV_BATCH = 8
CONV_STAGES = [(3, 32, 128, False), (32, 64, 64, True), (64, 128, 32, True), (128, 128, 16, True)]


def seconds_per_call(fn, min_seconds=1.0, min_runs=3):
    fn()
    times = []
    start = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def torch_rows(threads):
    import torch
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    rows = {}
    for tokens, d_in, d_out in LINEAR_SHAPES:
        x = torch.randn(tokens, d_in, requires_grad=True)
        w = torch.randn(d_out, d_in, requires_grad=True)
        g = torch.randn(tokens, d_out)

        def step():
            x.grad = None
            w.grad = None
            torch.nn.functional.linear(x, w).backward(g)

        seconds = seconds_per_call(step)
        rows[f"linear fwd+bwd {tokens}x{d_in}->{d_out}"] = 6.0 * tokens * d_in * d_out / seconds / 1e9
    for mask_kind, length in ATTENTION:
        q, k, v = (torch.randn(1, HEADS, length, HEAD_DIM, requires_grad=True) for _ in range(3))
        g = torch.randn(1, HEADS, length, HEAD_DIM)
        mask = None
        if mask_kind == "causal":
            mask = torch.full((length, length), float("-inf")).triu(1)
        scale = HEAD_DIM ** -0.5

        def step():
            for t in (q, k, v):
                t.grad = None
            scores = q @ k.transpose(-1, -2) * scale
            if mask is not None:
                scores = scores + mask
            (torch.softmax(scores, dim=-1) @ v).backward(g)

        seconds = seconds_per_call(step)
        rows[f"attention {mask_kind} T={length} fwd+bwd"] = length / seconds
    for c_in, c_out, side, input_grad in CONV_STAGES:
        x = torch.randn(CONV_BATCH, c_in, side, side, requires_grad=input_grad)
        w = torch.randn(c_out, c_in, 3, 3, requires_grad=True)
        b = torch.randn(c_out, requires_grad=True)
        g = torch.randn(CONV_BATCH, c_out, side, side)

        def step():
            for t in (x, w, b):
                t.grad = None
            torch.nn.functional.conv2d(x, w, b, padding=1).backward(g)

        seconds = seconds_per_call(step)
        flops = 2.0 * CONV_BATCH * c_out * c_in * 9 * side * side * (3 if input_grad else 2)
        name = f"conv2d fwd+bwd {CONV_BATCH}x{c_in}x{side}x{side}->{c_out} 3x3"
        rows[name] = flops / seconds / 1e9
    return rows


def nuri_rows(binary, threads):
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "nuri.json"
        subprocess.run([binary, "--threads", str(threads), "--json", str(out)], check=True,
                       stdout=subprocess.DEVNULL)
        data = json.loads(out.read_text())
    return {row["name"]: (row["value"], row["metric"], row["note"]) for row in data["rows"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", default="build/bin/nuri-bench-ops", help="nuri-bench-ops binary")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs of each side")
    parser.add_argument("--json", help="also write the comparison to this file")
    args = parser.parse_args()

    blas = blas_in_use()
    print(f"threads: {args.threads}; libblas.so.3 -> {blas}")
    if "openblas" not in blas:
        print("warning: PyTorch is not using OpenBLAS; its figures are not a fair peer", file=sys.stderr)

    ours, peer = {}, {}
    for round_index in range(args.rounds):
        print(f"round {round_index + 1}/{args.rounds}: nuri ...", flush=True)
        for name, (value, metric, note) in nuri_rows(args.bench, args.threads).items():
            if name not in ours or value > ours[name][0] or metric == "MiB":
                ours[name] = (value, metric, note)
        print(f"round {round_index + 1}/{args.rounds}: pytorch ...", flush=True)
        for name, value in torch_rows(args.threads).items():
            peer[name] = max(peer.get(name, 0.0), value)

    print(f"\n{'benchmark':44} {'unit':10} {'nuri':>12} {'pytorch':>12} {'nuri/pytorch':>13}  note")
    table = []
    for name, (value, metric, note) in ours.items():
        other = peer.get(name)
        ratio = value / other if other else None
        table.append({"name": name, "metric": metric, "nuri": value, "pytorch": other, "ratio": ratio,
                      "note": note})
        other_text = f"{other:.2f}" if other else "-"
        ratio_text = f"{ratio:.2f}" if ratio else "-"
        print(f"{name:44} {metric:10} {value:12.2f} {other_text:>12} {ratio_text:>13}  {note}")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(
            {"threads": args.threads, "blas": blas, "rows": table}, indent=2) + "\n")


if __name__ == "__main__":
    main()
