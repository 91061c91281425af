#!/usr/bin/env python3
"""Decoder training on one GPU, nuri against PyTorch in one run: tokens/s and model FLOPs
utilisation (MFU) for the GPT-2-small (124M) and -medium (350M) sizes at sequence 1024, with the
ratio nuri / PyTorch. Needs a CUDA build of nuri and PyTorch with CUDA.

nuri runs `nuri-bench-decoder --device cuda --precision bf16` (linear layers in bf16 on tensor
cores, fp32 master weights; the other ops in f32). The PyTorch peer builds the same model (bench/decoder_vs_torch.py's build_model, with torch's fused
scaled_dot_product_attention), trains it under bf16 autocast with fp32 master weights and a fused
AdamW, compiled by torch.compile when that works on the machine (the table says which). Each step
is timed to torch.cuda.synchronize. MFU counts 6 FLOPs per parameter and token plus 12 x layers x
width x sequence for attention (nuri's count, which both sides share), against --peak-tflops
(989: H100 SXM dense bf16).
"""
import argparse
import json
import pathlib
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from decoder_vs_torch import build_model, median  # noqa: E402

MODELS = ("124m", "350m")


def run_nuri(binary, model, steps, peak):
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "nuri.json"
        subprocess.run([binary, "--device", "cuda", "--precision", "bf16", "--model", model,
                        "--steps", str(steps), "--peak-tflops", str(peak), "--json", str(out)],
                       check=True)
        result = json.loads(out.read_text())
    rows = {r["name"]: r["value"] for r in result["rows"] if r["model"] == model}
    return result["models"][model], rows


def torch_worker(spec, steps, compile_model):
    """Trains the model in PyTorch on cuda:0; returns tokens/s and whether it was compiled."""
    import torch
    torch.manual_seed(0)
    cfg, batch, seq = spec["config"], spec["batch"], spec["seq"]
    model = build_model(torch, cfg, sdpa=True).cuda()
    compiled = False
    if compile_model:
        try:
            model = torch.compile(model)
            compiled = True
        except Exception as error:  # noqa: BLE001 - any failure falls back to eager
            print(f"torch.compile unavailable: {error}", file=sys.stderr)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1, fused=True)
    vocab = cfg["vocab_size"]
    ids = torch.randint(0, vocab, (batch, seq), device="cuda")
    targets = torch.randint(0, vocab, (batch, seq), device="cuda")
    times = []
    for step in range(steps + 3):  # three warm-up steps (compilation happens in the first)
        torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(ids)
        loss = torch.nn.functional.cross_entropy(logits.float().view(-1, vocab), targets.view(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        if step >= 3:
            times.append(time.perf_counter() - start)
    return {"tokens_per_s": batch * seq / median(times), "compiled": compiled}


def run_torch(spec, steps, compile_model):
    out = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec), "--steps",
                          str(steps)] + ([] if compile_model else ["--no-compile"]),
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", default="build/bin/nuri-bench-decoder")
    parser.add_argument("--steps", type=int, default=10, help="timed training steps per model")
    parser.add_argument("--peak-tflops", type=float, default=989.0)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--no-compile", action="store_true", help="PyTorch eager only")
    parser.add_argument("--json", help="also write the comparison to this file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(torch_worker(json.loads(args.worker), args.steps, not args.no_compile)))
        return
    results = []
    for model in args.models.split(","):
        spec, nuri = run_nuri(args.bench, model, args.steps, args.peak_tflops)
        # nuri's MFU row fixes the FLOPs per token that both sides are measured by.
        flops = nuri["train MFU"] / 100 * args.peak_tflops * 1e12 / nuri["train tokens/s"]
        try:
            peer = run_torch(spec, args.steps, not args.no_compile)
        except subprocess.CalledProcessError as error:
            print(f"PyTorch peer failed for {model}:\n{error.stderr}", file=sys.stderr)
            peer = None
        row = {"model": model, "nuri_tokens_per_s": nuri["train tokens/s"],
               "nuri_mfu_percent": nuri["train MFU"]}
        if peer:
            row.update(torch_tokens_per_s=peer["tokens_per_s"], torch_compiled=peer["compiled"],
                       torch_mfu_percent=peer["tokens_per_s"] * flops / (args.peak_tflops * 1e10),
                       ratio=nuri["train tokens/s"] / peer["tokens_per_s"])
        results.append(row)
    print("benchmark decoder training (GPU): tokens/s, MFU against "
          f"{args.peak_tflops:g} TFLOP/s")
    print(f"  {'model':6} {'nuri tok/s':>12} {'nuri MFU':>9} {'torch tok/s':>12} "
          f"{'torch MFU':>9} {'nuri/torch':>10}")
    for r in results:
        torch_part = (f"{r['torch_tokens_per_s']:12.0f} {r['torch_mfu_percent']:8.1f}% "
                      f"{r['ratio']:10.3f}" + ("" if r["torch_compiled"] else " (eager)")
                      if "ratio" in r else f"{'failed':>12}")
        print(f"  {r['model']:6} {r['nuri_tokens_per_s']:12.0f} {r['nuri_mfu_percent']:8.1f}% "
              f"{torch_part}")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
