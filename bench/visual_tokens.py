#!/usr/bin/python3
"""How alike an omni checkpoint's visual tokens are, stage by stage through the vision encoder.

Re-runs the vision encoder's forward in NumPy from a checkpoint's model.safetensors (the layout of
encoders/vision_encoder.cpp: linear 2-frame patches, pre-norm blocks with 2-D rotary positions,
final LayerNorm, 2x2 merge, projector MLP and RMSNorm) on a few square images, and prints for each
stage the mean cosine between the tokens of one image, the mean cosine between different images'
mean tokens, and the RMS of the part shared by every token against the rest. Tokens that collapse
to one vector show cosines of 1.000 at the output.

Usage: bench/visual_tokens.py CHECKPOINT_DIR IMAGE.png [IMAGE.png ...]
Needs numpy, and ffmpeg to read the images (which must already be on the encoder's grid).
"""
import json
import math
import struct
import subprocess
import sys

import numpy as np

PIXEL_MEAN = np.array([0.48145466, 0.4578275, 0.40821073])
PIXEL_STD = np.array([0.26862954, 0.26130258, 0.27577711])


def load_safetensors(path):
    blob = open(path, "rb").read()
    size = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + size])
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        data = np.frombuffer(blob[8 + size + start:8 + size + end], dtype=np.float32)
        tensors[name] = data.reshape(info["shape"]).astype(np.float64)
    return tensors


def load_pixels(path):
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                            "stream=width,height", "-of", "csv=p=0", path],
                           capture_output=True, text=True, check=True).stdout
    width, height = (int(v) for v in probe.strip().split(","))
    raw = subprocess.run(["ffmpeg", "-loglevel", "error", "-i", path, "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    rgb = np.frombuffer(raw, np.uint8).reshape(height, width, 3) / 255.0
    return ((rgb - PIXEL_MEAN) / PIXEL_STD).transpose(2, 0, 1)


def layer_norm(x, weight, bias, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def gelu(x):
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def rope(x, positions, theta):
    half = x.shape[-1] // 2
    angles = positions[:, None] * theta ** (-np.arange(half) * 2 / x.shape[-1])[None]
    cos, sin = np.cos(angles)[:, None, :], np.sin(angles)[:, None, :]
    first, second = x[..., :half], x[..., half:]
    return np.concatenate([first * cos - second * sin, second * cos + first * sin], -1)


def stages(weights, config, pixels):
    """(name, tokens) after each stage of the vision encoder for one image."""
    vision = config["vision_config"]
    p, m, tp = vision["patch_size"], vision["merge_size"], vision["temporal_patch_size"]
    heads, eps, theta = vision["num_heads"], vision["layer_norm_eps"], vision["rope_theta"]
    frames = np.stack([pixels] * tp)
    bh, bw = pixels.shape[1] // (p * m), pixels.shape[2] // (p * m)
    x = frames.reshape(tp, 3, bh, m, p, bw, m, p).transpose(2, 5, 3, 6, 1, 0, 4, 7)
    x = x.reshape(bh * bw * m * m, -1)
    w = lambda name: weights["vision_encoder." + name]
    x = x @ w("patch_embed.weight").T + w("patch_embed.bias")
    out = [("patch embedding", x)]
    count, width = x.shape
    square, within = np.arange(count) // (m * m), np.arange(count) % (m * m)
    rows, cols = square // bw * m + within // m, square % bw * m + within % m
    head_dim = width // heads
    for layer in range(vision["num_layers"]):
        lw = lambda name: w(f"layers.{layer}.{name}")
        h = layer_norm(x, lw("input_layernorm.weight"), lw("input_layernorm.bias"), eps)
        project = lambda n: (h @ lw(f"self_attn.{n}.weight").T + lw(f"self_attn.{n}.bias")).reshape(
            count, heads, head_dim)
        rotate = lambda t: np.concatenate([rope(t[..., :head_dim // 2], rows, theta),
                                           rope(t[..., head_dim // 2:], cols, theta)], -1)
        q, k, v = rotate(project("q_proj")), rotate(project("k_proj")), project("v_proj")
        scores = np.einsum("shd,thd->hst", q, k) / math.sqrt(head_dim)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        scores /= scores.sum(-1, keepdims=True)
        attended = np.einsum("hst,thd->shd", scores, v).reshape(count, width)
        x = x + attended @ lw("self_attn.o_proj.weight").T + lw("self_attn.o_proj.bias")
        h = layer_norm(x, lw("post_attention_layernorm.weight"),
                       lw("post_attention_layernorm.bias"), eps)
        x = x + gelu(h @ lw("mlp.fc1.weight").T + lw("mlp.fc1.bias")) @ lw("mlp.fc2.weight").T
        x = x + lw("mlp.fc2.bias")
        out.append((f"block {layer}", x))
    x = layer_norm(x, w("norm.weight"), w("norm.bias"), eps).reshape(count // (m * m), -1)
    out.append(("encoder norm, merged", x))
    pw = lambda name: weights["vision_projector." + name]
    x = gelu(x @ pw("fc1.weight").T + pw("fc1.bias")) @ pw("fc2.weight").T + pw("fc2.bias")
    out.append(("projector MLP", x))
    x = x / np.sqrt((x ** 2).mean(-1, keepdims=True) + 1e-6) * pw("norm.weight")
    out.append(("projector output", x))
    return out


def mean_cosine(rows):
    unit = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    n = len(unit)
    return ((unit @ unit.T).sum() - n) / (n * n - n)


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    checkpoint = sys.argv[1]
    weights = load_safetensors(f"{checkpoint}/model.safetensors")
    config = json.load(open(f"{checkpoint}/config.json"))
    per_image = [stages(weights, config, load_pixels(path)) for path in sys.argv[2:]]
    print(f"{'stage':22s} {'cos in image':>12s} {'cos images':>10s} {'shared RMS':>10s} "
          f"{'rest RMS':>9s}")
    for index, (name, _) in enumerate(per_image[0]):
        tokens = np.stack([image[index][1] for image in per_image])  # [images, tokens, width]
        shared = tokens.reshape(-1, tokens.shape[-1]).mean(0)
        within = np.mean([mean_cosine(t) for t in tokens])
        between = mean_cosine(tokens.mean(1))
        rest = np.sqrt(((tokens - shared) ** 2).mean())
        print(f"{name:22s} {within:12.4f} {between:10.4f} {np.sqrt((shared ** 2).mean()):10.3f} "
              f"{rest:9.3f}")


if __name__ == "__main__":
    main()
