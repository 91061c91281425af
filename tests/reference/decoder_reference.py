#!/usr/bin/python3
"""Writes tests/data/decoder/<name>/: small random Llama-style decoders and their logits, computed
in float64 by an implementation of the Hugging Face Llama forward written here in PyTorch.

The model follows transformers' modeling_llama: RMSNorm (x * rsqrt(mean(x^2) + eps) * w),
rotary embeddings in the rotate-half layout (inv_freq = theta^(-2i/d), cos/sin of
cat(freqs, freqs)), grouped-query attention by repeat_kv, a causal softmax(q k^T / sqrt(d)) v,
the SwiGLU MLP down(silu(gate(x)) * up(x)), a final norm and the output head (tied to the
embeddings when tie_word_embeddings is true). It shares no code with nuri.

Each model directory holds:
  config.json          Hugging Face keys
  model.safetensors    the weights (F32 for "untied", BF16 for "tied"; written by hand below)
  golden.safetensors   ids [B, T] (I32), targets [B, T] (I32, some -100), logits [B, T, V] (F32,
                       rounded from float64) and loss [] (F32, mean cross-entropy over the
                       targets that are not -100, from the float64 logits)

Usage: /usr/bin/python3 tests/reference/decoder_reference.py
"""

import json
import math
import os
import struct

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "decoder")

MODELS = {
    # name: (config, weight dtype, batch, length, seed)
    "untied": (dict(vocab_size=97, hidden_size=48, intermediate_size=128, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                    rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False),
               "F32", 2, 13, 1),
    "tied": (dict(vocab_size=97, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, head_dim=24,
                  max_position_embeddings=32, rms_norm_eps=1e-6, rope_theta=500000.0,
                  tie_word_embeddings=True),
             "BF16", 1, 20, 2),
}


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rotary(x, positions, theta):
    """x [B, H, T, D] turned by positions [T]."""
    dim = x.shape[-1]
    inv_freq = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    freqs = torch.outer(positions.to(torch.float64), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return x * emb.cos() + rotate_half(x) * emb.sin()


def repeat_kv(x, groups):
    """[B, Hkv, T, D] -> [B, Hkv * groups, T, D], each kv head repeated for its query heads."""
    b, h, t, d = x.shape
    return x[:, :, None, :, :].expand(b, h, groups, t, d).reshape(b, h * groups, t, d)


def forward(cfg, w, ids):
    """Logits [B, T, V] in float64 for ids [B, T]."""
    hq, hkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    d = cfg.get("head_dim") or cfg["hidden_size"] // hq
    eps, theta = cfg["rms_norm_eps"], cfg["rope_theta"]
    b, t = ids.shape
    positions = torch.arange(t)
    x = w["model.embed_tokens.weight"][ids]
    mask = torch.full((t, t), float("-inf"), dtype=torch.float64).triu(1)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = (h @ w[p + "self_attn.q_proj.weight"].T).view(b, t, hq, d).transpose(1, 2)
        k = (h @ w[p + "self_attn.k_proj.weight"].T).view(b, t, hkv, d).transpose(1, 2)
        v = (h @ w[p + "self_attn.v_proj.weight"].T).view(b, t, hkv, d).transpose(1, 2)
        q, k = rotary(q, positions, theta), rotary(k, positions, theta)
        k, v = repeat_kv(k, hq // hkv), repeat_kv(v, hq // hkv)
        scores = q @ k.transpose(-1, -2) / math.sqrt(d) + mask
        a = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(b, t, hq * d)
        x = x + a @ w[p + "self_attn.o_proj.weight"].T
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        gate = h @ w[p + "mlp.gate_proj.weight"].T
        up = h @ w[p + "mlp.up_proj.weight"].T
        x = x + (torch.nn.functional.silu(gate) * up) @ w[p + "mlp.down_proj.weight"].T
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight" if cfg["tie_word_embeddings"] else "lm_head.weight"]
    return x @ head.T


def random_weights(cfg, gen, bf16):
    """name -> float32 tensor; values rounded to bf16 when the file stores BF16."""
    dm, hq, hkv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    d = cfg.get("head_dim") or dm // hq
    inter, vocab = cfg["intermediate_size"], cfg["vocab_size"]
    shapes = {"model.embed_tokens.weight": (vocab, dm)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        shapes[p + "input_layernorm.weight"] = (dm,)
        shapes[p + "self_attn.q_proj.weight"] = (hq * d, dm)
        shapes[p + "self_attn.k_proj.weight"] = (hkv * d, dm)
        shapes[p + "self_attn.v_proj.weight"] = (hkv * d, dm)
        shapes[p + "self_attn.o_proj.weight"] = (dm, hq * d)
        shapes[p + "post_attention_layernorm.weight"] = (dm,)
        shapes[p + "mlp.gate_proj.weight"] = (inter, dm)
        shapes[p + "mlp.up_proj.weight"] = (inter, dm)
        shapes[p + "mlp.down_proj.weight"] = (dm, inter)
    shapes["model.norm.weight"] = (dm,)
    if not cfg["tie_word_embeddings"]:
        shapes["lm_head.weight"] = (vocab, dm)
    weights = {}
    for name, shape in shapes.items():
        if name.endswith("norm.weight"):
            value = 1.0 + 0.2 * torch.randn(shape, generator=gen)
        elif name == "model.embed_tokens.weight":
            value = 0.3 * torch.randn(shape, generator=gen)
        else:
            # Scaled so that activations stay of order one through the blocks.
            value = torch.randn(shape, generator=gen) / math.sqrt(shape[1])
        value = value.to(torch.float32)
        if bf16:
            value = value.to(torch.bfloat16).to(torch.float32)
        weights[name] = value
    return weights


def write_safetensors(path, tensors):
    """tensors: name -> (dtype name, shape, little-endian bytes). Offsets follow the given order."""
    header, data = {}, b""
    for name, (dtype, shape, blob) in tensors.items():
        header[name] = {"dtype": dtype, "shape": list(shape),
                        "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(text)) + text + data)


def f32_bytes(t):
    return t.to(torch.float32).numpy().astype("<f4").tobytes()


def bf16_bytes(t):
    # The values are already bf16-exact, so the upper half of each f32 is the bf16 pattern.
    bits = np.frombuffer(t.to(torch.float32).numpy().astype("<f4").tobytes(), dtype="<u4")
    assert not np.any(bits & 0xFFFF)
    return (bits >> 16).astype("<u2").tobytes()


def main():
    for name, (cfg, dtype, batch, length, seed) in MODELS.items():
        gen = torch.Generator().manual_seed(seed)
        weights = random_weights(cfg, gen, dtype == "BF16")
        ids = torch.randint(0, cfg["vocab_size"], (batch, length), generator=gen)
        targets = torch.randint(0, cfg["vocab_size"], (batch, length), generator=gen)
        targets[:, 0] = -100
        targets[-1, length // 2] = -100

        logits = forward(cfg, {k: v.to(torch.float64) for k, v in weights.items()}, ids)
        kept = targets != -100
        loss = torch.nn.functional.cross_entropy(logits[kept], targets[kept])

        folder = os.path.join(OUT, name)
        os.makedirs(folder, exist_ok=True)
        config = dict(cfg, architectures=["LlamaForCausalLM"], model_type="llama",
                      hidden_act="silu", torch_dtype="float32", initializer_range=0.02,
                      attention_bias=False, bos_token_id=None, eos_token_id=None)
        with open(os.path.join(folder, "config.json"), "w") as out:
            json.dump(config, out, indent=2)
            out.write("\n")
        pack = bf16_bytes if dtype == "BF16" else f32_bytes
        write_safetensors(os.path.join(folder, "model.safetensors"),
                          {k: (dtype, v.shape, pack(v)) for k, v in weights.items()})
        write_safetensors(os.path.join(folder, "golden.safetensors"), {
            "logits": ("F32", logits.shape, f32_bytes(logits)),
            "loss": ("F32", (), f32_bytes(loss.reshape(()))),
            "ids": ("I32", ids.shape, ids.numpy().astype("<i4").tobytes()),
            "targets": ("I32", targets.shape, targets.numpy().astype("<i4").tobytes()),
        })
        print(f"{name}: logits {tuple(logits.shape)}, max |logit| {logits.abs().max():.3f}, "
              f"loss {loss:.6f}")


if __name__ == "__main__":
    main()
