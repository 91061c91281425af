#!/usr/bin/python3
"""Runs nuri-bench-decoder and the same decoders in PyTorch's CPU build in one run, and prints the
ratios nuri / PyTorch. The models, batch, sequence length and generation lengths are read from
nuri's JSON output, so both sides build exactly the same shapes; both get the same thread count.
Each round runs one model on one side and then on the other, so that the two runs of a pair see
the same machine state; the table shows each side's best figure and the median over rounds of
the per-pair ratio.

The PyTorch peer is the Hugging Face Llama forward written with torch ops (RMSNorm, rotate-half
RoPE, repeat_kv for grouped-query attention, SwiGLU, tied head): Debian's PyTorch 1.13 has no
scaled_dot_product_attention, so attention is the math formulation softmax(q k^T * scale + mask) v.
Training is forward, backward and torch.optim.AdamW (its defaults, lr 1e-4, weight decay 0.1);
generation is greedy at batch 1 under torch.inference_mode with a key/value cache that grows by
torch.cat, as transformers' DynamicCache does. Each PyTorch model runs in its own process, so that
its peak RSS (ru_maxrss) is its own; it includes the interpreter and libtorch (about the figure
printed for "baseline RSS").

PyTorch uses whatever libblas.so.3 points to; with the reference (netlib) BLAS it would be ~10x
slower and the ratio meaningless, so the script prints that first.
"""
import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

from torch_peer import blas_in_use


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


def build_model(torch, cfg, sdpa=False):
    """The decoder in torch ops; sdpa uses torch's fused scaled_dot_product_attention (training
    only, no cache) in place of the math formulation."""
    nn = torch.nn
    dm, hq, hkv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or dm // hq
    eps, theta = cfg["rms_norm_eps"], cfg["rope_theta"]

    class RMSNorm(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(dm))

        def forward(self, x):
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * self.weight

    def rotate_half(x):
        return torch.cat((-x[..., hd // 2:], x[..., :hd // 2]), dim=-1)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.input_layernorm = RMSNorm()
            self.q_proj = nn.Linear(dm, hq * hd, bias=False)
            self.k_proj = nn.Linear(dm, hkv * hd, bias=False)
            self.v_proj = nn.Linear(dm, hkv * hd, bias=False)
            self.o_proj = nn.Linear(hq * hd, dm, bias=False)
            self.post_attention_layernorm = RMSNorm()
            self.gate_proj = nn.Linear(dm, cfg["intermediate_size"], bias=False)
            self.up_proj = nn.Linear(dm, cfg["intermediate_size"], bias=False)
            self.down_proj = nn.Linear(cfg["intermediate_size"], dm, bias=False)

        def forward(self, x, cos, sin, cache):
            b, t, _ = x.shape
            h = self.input_layernorm(x)
            q = self.q_proj(h).view(b, t, hq, hd).transpose(1, 2)
            k = self.k_proj(h).view(b, t, hkv, hd).transpose(1, 2)
            v = self.v_proj(h).view(b, t, hkv, hd).transpose(1, 2)
            q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
            if cache is not None:
                if cache:
                    k, v = torch.cat((cache[0], k), dim=2), torch.cat((cache[1], v), dim=2)
                cache[:] = [k, v]
            tk = k.shape[2]
            k = k.repeat_interleave(hq // hkv, dim=1)
            v = v.repeat_interleave(hq // hkv, dim=1)
            if sdpa:
                a = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
            else:
                scores = q @ k.transpose(-1, -2) * (hd ** -0.5)
                if t > 1:
                    mask = torch.full((t, tk), float("-inf"), device=x.device).triu(tk - t + 1)
                    scores = scores + mask
                a = torch.softmax(scores, dim=-1) @ v
            a = a.transpose(1, 2).reshape(b, t, hq * hd)
            x = x + self.o_proj(a)
            h = self.post_attention_layernorm(x)
            return x + self.down_proj(torch.nn.functional.silu(self.gate_proj(h)) * self.up_proj(h))

    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed_tokens = nn.Embedding(cfg["vocab_size"], dm)
            self.layers = nn.ModuleList(Block() for _ in range(cfg["num_hidden_layers"]))
            self.norm = RMSNorm()
            self.lm_head = None
            if not cfg["tie_word_embeddings"]:
                self.lm_head = nn.Linear(dm, cfg["vocab_size"], bias=False)
            self.register_buffer(
                "inv_freq", 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd)),
                persistent=False)

        def forward(self, ids, start=0, caches=None, last_only=False):
            t = ids.shape[1]
            positions = torch.arange(start, start + t, dtype=torch.float32, device=ids.device)
            freqs = torch.outer(positions, self.inv_freq)
            emb = torch.cat((freqs, freqs), dim=-1)
            cos, sin = emb.cos(), emb.sin()
            x = self.embed_tokens(ids)
            for i, layer in enumerate(self.layers):
                x = layer(x, cos, sin, None if caches is None else caches[i])
            x = self.norm(x)
            if last_only:
                x = x[:, -1:]
            head = self.embed_tokens.weight if self.lm_head is None else self.lm_head.weight
            return torch.nn.functional.linear(x, head)

    model = Decoder()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not name.endswith("norm.weight"):
                p.normal_(0.0, cfg["initializer_range"])
    return model


def torch_worker(spec, threads, steps, runs):
    """Runs one model in PyTorch and returns its rows {name: (value, unit)}."""
    import torch
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    baseline_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cfg = spec["config"]
    vocab, batch, seq = cfg["vocab_size"], spec["batch"], spec["seq"]
    rows = {"baseline RSS": (baseline_mib, "MiB")}

    model = build_model(torch, cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1)
    ids = torch.randint(0, vocab, (batch, seq))
    targets = torch.randint(0, vocab, (batch, seq))
    fwd, bwd, optim, total = [], [], [], []
    for step in range(steps + 1):
        t0 = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(ids).view(-1, vocab), targets.view(-1))
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        opt.zero_grad(set_to_none=True)
        t3 = time.perf_counter()
        if step:
            fwd.append(t1 - t0)
            bwd.append(t2 - t1)
            optim.append(t3 - t2)
            total.append(t3 - t0)
    rows["train tokens/s"] = (batch * seq / median(total), "tokens/s")
    rows["train forward"] = (median(fwd) * 1e3, "ms/step")
    rows["train backward"] = (median(bwd) * 1e3, "ms/step")
    rows["train adamw"] = (median(optim) * 1e3, "ms/step")
    rows["train peak RSS"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "MiB")
    del opt, loss

    model = build_model(torch, cfg)
    prompt_len, new_tokens = spec["prompt"], spec["new_tokens"]
    prompt = torch.randint(0, vocab, (1, prompt_len))
    prefill, decode = [], []
    with torch.inference_mode():
        for run in range(runs + 1):
            caches = [[] for _ in range(cfg["num_hidden_layers"])]
            t0 = time.perf_counter()
            token = model(prompt, 0, caches, last_only=True)[0, -1].argmax().view(1, 1)
            t1 = time.perf_counter()
            for i in range(new_tokens - 1):
                token = model(token, prompt_len + i, caches)[0, -1].argmax().view(1, 1)
            t2 = time.perf_counter()
            if run:
                prefill.append(t1 - t0)
                decode.append((t2 - t1) / (new_tokens - 1))
    rows["prefill tokens/s"] = (prompt_len / median(prefill), "tokens/s")
    rows["decode tokens/s"] = (1 / median(decode), "tokens/s")
    return rows


def run_nuri(binary, threads, steps, runs, tiny_config, model=None):
    """nuri's figures; model None lists the models without running them."""
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "nuri.json"
        extra = ["--model", model] if model else ["--list"]
        subprocess.run([binary, "--threads", str(threads), "--steps", str(steps), "--runs",
                        str(runs), "--tiny-config", tiny_config, "--json", str(out)] + extra,
                       check=True, stdout=subprocess.DEVNULL)
        return json.loads(out.read_text())


def run_torch(spec, threads, steps, runs):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    out = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec), "--threads",
                          str(threads), "--steps", str(steps), "--runs", str(runs)],
                         check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out)


# For these rows a smaller figure is better.
LOWER_IS_BETTER = {"train forward", "train backward", "train adamw", "train peak RSS",
                   "baseline RSS"}


def keep_best(table, key, value, unit):
    name = key[1]
    if key not in table:
        table[key] = (value, unit)
    elif name in LOWER_IS_BETTER:
        table[key] = (min(table[key][0], value), unit)
    else:
        table[key] = (max(table[key][0], value), unit)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", default="build/bin/nuri-bench-decoder",
                        help="nuri-bench-decoder binary")
    parser.add_argument("--tiny-config", default="configs/tiny-text.json")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--steps", type=int, default=3, help="timed training steps per model")
    parser.add_argument("--runs", type=int, default=2, help="timed generations per model")
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs of each side")
    parser.add_argument("--json", help="also write the comparison to this file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        rows = torch_worker(json.loads(args.worker), args.threads, args.steps, args.runs)
        print(json.dumps(rows))
        return

    blas = blas_in_use()
    print(f"threads: {args.threads}; libblas.so.3 -> {blas}")
    if "openblas" not in blas:
        print("warning: PyTorch is not using OpenBLAS; its figures are not a fair peer",
              file=sys.stderr)

    # The model specs (configs, batch, lengths) come from nuri's own list, without running it.
    models = run_nuri(args.bench, args.threads, 1, 1, args.tiny_config)["models"]
    ours, peer, ratios = {}, {}, {}
    for round_index in range(args.rounds):
        for name, spec in models.items():
            print(f"round {round_index + 1}/{args.rounds}: {name}: nuri, pytorch ...", flush=True)
            mine = {(name, row["name"]): (row["value"], row["unit"]) for row in
                    run_nuri(args.bench, args.threads, args.steps, args.runs, args.tiny_config,
                             name)["rows"]}
            theirs = {(name, row): value_unit for row, value_unit in
                      run_torch(spec, args.threads, args.steps, args.runs).items()}
            for key, (value, unit) in mine.items():
                keep_best(ours, key, value, unit)
                if key in theirs:
                    ratios.setdefault(key, []).append(value / theirs[key][0])
            for key, (value, unit) in theirs.items():
                keep_best(peer, key, value, unit)

    print(f"\n{'model':10} {'benchmark':18} {'unit':9} {'nuri':>10} {'pytorch':>10} "
          f"{'nuri/pytorch':>13}  (median of {args.rounds} paired rounds)")
    table = []
    for (model, name), (value, unit) in list(ours.items()) + [
            (key, (None, unit)) for key, (_, unit) in peer.items() if key not in ours]:
        other = peer.get((model, name), (None, unit))[0]
        ratio = median(ratios[(model, name)]) if (model, name) in ratios else None
        table.append({"model": model, "name": name, "unit": unit, "nuri": value, "pytorch": other,
                      "ratio": ratio})
        fmt = lambda v: f"{v:10.1f}" if v is not None else f"{'-':>10}"
        ratio_text = f"{ratio:13.2f}" if ratio else f"{'-':>13}"
        print(f"{model:10} {name:18} {unit:9} {fmt(value)} {fmt(other)} {ratio_text}")
    print("(for ms/step and MiB rows a ratio below 1 favours nuri; for tokens/s, above 1)")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(
            {"threads": args.threads, "blas": blas, "models": models, "rows": table},
            indent=2) + "\n")


if __name__ == "__main__":
    main()
