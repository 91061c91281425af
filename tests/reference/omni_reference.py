#!/usr/bin/python3
"""Writes tests/data/omni/: a small random omni model (audio and vision encoders with their
projectors, and an M-RoPE decoder), a batch of two sequences of text, images and audio, their loss
and the gradient of every parameter, computed in float64 by an implementation of the model written
here in PyTorch.

The audio path follows encoders/audio_encoder.h (after Whisper, streamable): the log-mel is cut
into chunks of chunk_seconds, the last one zero-padded to a multiple of 2 x pool_stride frames;
each chunk on its own goes through conv1d (k3, pad 1) + GELU and conv1d (k3, stride 2, pad 1) +
GELU; then pre-LayerNorm blocks like the ViT's whose attention is block-causal over chunks (a frame
sees its chunk and the earlier ones), with a rotate-half RoPE of the frame index after the
stride; a final LayerNorm, average pooling by pool_stride and the projector (linear, GELU, linear,
RMSNorm). The chat template gives audio token k the temporal id of k x 40 ms on all three streams.
With ctc_weight, a linear CTC head reads the pooled features (before the projector) with classes
for the vocabulary and a blank (class vocab_size), and the loss adds ctc_weight times torch's
ctc_loss (per label, zero_infinity) summed over the transcribed audio items, per sequence.

The vision path follows the description in encoders/vision_encoder.h (after Qwen2-VL): a
convolutional stem per frame (3x3 convolutions with zero padding, GELU, 2x2 max-pools except the
last stage, which pools what is left of a patch), the frame repeated temporal_patch_size times,
patches ordered so that every merge_size x merge_size square is contiguous and each flattened as
(channel, frame, row, column), a linear patch embedding, pre-LayerNorm ViT blocks (biased q/k/v/o,
full attention, 2D rotate-half RoPE: the first half of each head turns by the patch's row, the
second half by its column), a final LayerNorm, the merge of each square into one vector and the
projector (linear, GELU, linear, RMSNorm with eps 1e-6); with global_context, the maxima of the
stem's output over each cell of a context_grid x context_grid grid (adaptive max pooling's cells),
concatenated cell by cell in raster order and through their own linear layer, are added to every
token before that RMSNorm. The decoder is the Llama of decoder_reference.py with multimodal RoPE
(Qwen2-VL's mrope_section: the first sections[0] frequencies follow the temporal ids, the next
sections[1] the height ids, the rest the width ids) and a tied output head. Each sequence's
embeddings are its token embeddings with the image rows replaced by the encoder's output; the
shorter sequence is zero-padded, its padding positions continue each stream from one past the
largest id, and padding has no targets. The loss is the mean next-token cross-entropy over the
targets that are not -100. GELU is the exact (erf) one.
It shares no code with nuri.

The directory holds:
  config.json          the omni config (Hugging Face decoder keys, "audio_config" and
                       "vision_config" sections)
  model.safetensors    the weights (F32; norms and biases away from their trivial init)
  golden.safetensors   per sequence b: b.ids [T] (I32), b.targets [T] (I32, -100 where there is
                       no loss), b.positions [3, T] (I32, temporal, height and width ids as the
                       chat template lays them out), b.slices [S, 5] (I32, media, audio, first,
                       count, start per media slice), b.mediaN.pixels [3, H, W] (F32,
                       normalised) or b.mediaN.mel [n_mels, frames] (F32) per media item N,
                       and b.mediaN.transcript [L] (I32) for an audio item that has one;
                       then loss [] (F32) and grad.<parameter> for every parameter (F32, rounded
                       from float64)

Usage: /usr/bin/python3 tests/reference/omni_reference.py
"""

import json
import math
import os

import torch
import torch.nn.functional as F

from decoder_reference import rms_norm, rotate_half, write_safetensors

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "omni")

VISION = dict(patch_size=8, temporal_patch_size=2, merge_size=2, hidden_size=24, num_layers=2,
              num_heads=2, intermediate_size=48, output_size=32, min_pixels=1024,
              max_pixels=2048, rope_theta=10000.0, layer_norm_eps=1e-5, initializer_range=0.02,
              stem_channels=[4, 8], global_context=True, context_grid=3)
AUDIO = dict(n_mels=8, hidden_size=16, num_layers=2, num_heads=2, intermediate_size=32,
             chunk_seconds=0.2, pool_stride=2, output_size=32, rope_theta=10000.0,
             layer_norm_eps=1e-5, initializer_range=0.02, ctc_weight=0.5)
CONFIG = dict(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=2, head_dim=12,
              max_position_embeddings=128, rms_norm_eps=1e-6, rope_theta=10000.0,
              tie_word_embeddings=True, rope_scaling={"type": "mrope", "mrope_section": [1, 2, 3]},
              audio_config=AUDIO, vision_config=VISION)
SEED = 3
PROJECTOR_EPS = 1e-6

# Special tokens at the top of the vocabulary; text ids are drawn below them.
(IM_START, IM_END, USER, ASSISTANT, IMAGE_START, IMAGE_END, IMAGE_PAD, AUDIO_START, AUDIO_END,
 AUDIO_PAD) = range(54, 64)
TEXT_IDS = 54
MEL_FRAMES_PER_SECOND = 100
SECONDS_PER_TEMPORAL_ID = 0.04

# Per sequence, the turns, each (role, parts) where a part is a number of text tokens,
# ("image", (height, width)) in pixels or ("audio", frames, transcript length) of log-mel. 50
# frames are two whole chunks of 20 and a partial one of 10, padded to 12: 13 tokens, which a
# transcript of 5 labels (one repeated) fits.
SEQUENCES = [
    [(USER, [("image", (48, 32)), 3]), (ASSISTANT, [4])],
    [(USER, [2, ("image", (32, 64)), ("audio", 50, 5), 1]), (ASSISTANT, [6])],
]

PIXEL_MEAN = (0.48145466, 0.4578275, 0.40821073)
PIXEL_STD = (0.26862954, 0.26130258, 0.27577711)


def rotate(x, angles):
    """x [B, T, H, D] turned by angles [B, T, D / 2] (rotate-half layout)."""
    emb = torch.cat((angles, angles), dim=-1)[:, :, None, :]
    return x * emb.cos() + rotate_half(x) * emb.sin()


def inverse_frequencies(dim, theta):
    """theta^(-2i / dim) for i < dim / 2."""
    return 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))


def attention(q, k, v, causal):
    """softmax(q k^T / sqrt(D)) v; q [B, T, Hq, D], k and v [B, T, Hkv, D] (kv heads repeated)."""
    groups = q.shape[2] // k.shape[2]
    k, v = k.repeat_interleave(groups, dim=2), v.repeat_interleave(groups, dim=2)
    scores = torch.einsum("bthd,bshd->bhts", q, k) / math.sqrt(q.shape[-1])
    if causal:
        t = q.shape[1]
        scores = scores.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf"))
    return torch.einsum("bhts,bshd->bthd", scores.softmax(-1), v)


def linear(w, x, prefix):
    """The biased linear layer `prefix` applied to x."""
    return F.linear(x, w[prefix + ".weight"], w[prefix + ".bias"])


def encoder_block(w, x, pre, heads, eps, turn, mask):
    """A pre-LayerNorm block of biased q/k/v/o attention (keys where mask [S, S] is true, queries
    and keys turned by `turn`) and a GELU MLP, on x [1, S, D]."""
    s, d = x.shape[1], x.shape[2]
    h = F.layer_norm(x, (d,), w[pre + "input_layernorm.weight"], w[pre + "input_layernorm.bias"],
                     eps)
    q = turn(linear(w, h, pre + "self_attn.q_proj").view(1, s, heads, d // heads))
    k = turn(linear(w, h, pre + "self_attn.k_proj").view(1, s, heads, d // heads))
    val = linear(w, h, pre + "self_attn.v_proj").view(1, s, heads, d // heads)
    scores = torch.einsum("bthd,bshd->bhts", q, k) / math.sqrt(d // heads)
    scores = scores.masked_fill(~mask, float("-inf"))
    a = torch.einsum("bhts,bshd->bthd", scores.softmax(-1), val).reshape(1, s, d)
    x = x + linear(w, a, pre + "self_attn.o_proj")
    h = F.layer_norm(x, (d,), w[pre + "post_attention_layernorm.weight"],
                     w[pre + "post_attention_layernorm.bias"], eps)
    return x + linear(w, F.gelu(linear(w, h, pre + "mlp.fc1")), pre + "mlp.fc2")


def project(w, x, prefix, context=None):
    """The projector: linear, GELU, linear, plus the optional context, then RMSNorm."""
    x = linear(w, F.gelu(linear(w, x, prefix + ".fc1")), prefix + ".fc2")
    if context is not None:
        x = x + context
    return rms_norm(x, w[prefix + ".norm.weight"], PROJECTOR_EPS)


def encode_audio(cfg, w, mel):
    """Audio tokens [ceil(frames / (2 pool_stride)), output_size] of a log-mel [n_mels, frames],
    and the CTC head's logits [tokens, vocab_size + 1] (None without ctc_weight)."""
    a = cfg["audio_config"]
    d, heads, eps, stride = a["hidden_size"], a["num_heads"], a["layer_norm_eps"], a["pool_stride"]
    chunk = round(a["chunk_seconds"] * MEL_FRAMES_PER_SECOND)
    per_token = 2 * stride
    frames = []
    for start in range(0, mel.shape[1], chunk):
        piece = mel[:, start:start + chunk]
        padded = -(-piece.shape[1] // per_token) * per_token
        piece = F.pad(piece, (0, padded - piece.shape[1]))[None]
        x = F.gelu(F.conv1d(piece, w["audio_encoder.conv1.weight"], w["audio_encoder.conv1.bias"],
                            padding=1))
        x = F.gelu(F.conv1d(x, w["audio_encoder.conv2.weight"], w["audio_encoder.conv2.bias"],
                            stride=2, padding=1))
        frames.append(x[0].T)
    x = torch.cat(frames)[None]
    s, block = x.shape[1], chunk // 2
    index = torch.arange(s)
    mask = (index[None, :] // block) <= (index[:, None] // block)
    angles = (index[:, None].to(torch.float64) * inverse_frequencies(d // heads,
                                                                     a["rope_theta"]))[None]
    for i in range(a["num_layers"]):
        x = encoder_block(w, x, f"audio_encoder.layers.{i}.", heads, eps,
                          lambda t: rotate(t, angles), mask)
    x = F.layer_norm(x, (d,), w["audio_encoder.norm.weight"], w["audio_encoder.norm.bias"], eps)
    x = F.avg_pool1d(x.transpose(1, 2), stride, stride).transpose(1, 2)[0]
    logits = linear(w, x, "audio_encoder.ctc_head") if a["ctc_weight"] > 0 else None
    return project(w, x, "audio_projector"), logits


def encode_image(cfg, w, pixels):
    """Visual tokens [grid_h * grid_w, output_size] of a normalised image [3, H, W] (stem only)."""
    v = cfg["vision_config"]
    p, m, tp = v["patch_size"], v["merge_size"], v["temporal_patch_size"]
    d, heads, eps = v["hidden_size"], v["num_heads"], v["layer_norm_eps"]
    stages = len(v["stem_channels"])
    x, left = pixels[None], p
    for i in range(stages):
        pool = 2 if i + 1 < stages else left
        conv = f"vision_encoder.stem.conv{i + 1}"
        x = F.conv2d(x, w[conv + ".weight"], w[conv + ".bias"], padding=1)
        x = F.max_pool2d(F.gelu(x), pool, pool)
        left //= pool
    # x [1, C, H / p, W / p]: one feature vector per patch, the frame repeated tp times.
    context = None
    if v["global_context"]:  # each grid cell's largest stem feature per channel, to every token
        g = v["context_grid"]
        cells = F.adaptive_max_pool2d(x, g).permute(0, 2, 3, 1).reshape(1, g * g * x.shape[1])
        context = linear(w, cells, "vision_projector.global")
    c, bh, bw = x.shape[1], x.shape[2] // m, x.shape[3] // m
    x = x[:, None].expand(1, tp, c, bh * m, bw * m).reshape(1, tp, c, bh, m, bw, m)
    x = x.permute(0, 3, 5, 4, 6, 2, 1).reshape(1, bh * bw * m * m, c * tp)
    x = linear(w, x, "vision_encoder.patch_embed")

    index = torch.arange(bh * bw * m * m)
    square, within = index // (m * m), index % (m * m)
    rows = square // bw * m + within // m
    cols = square % bw * m + within % m
    half = d // heads // 2
    inv = inverse_frequencies(half, v["rope_theta"])
    row_angles = (rows[:, None].to(torch.float64) * inv)[None]
    col_angles = (cols[:, None].to(torch.float64) * inv)[None]

    def turn(t):
        """Heads [1, S, H, Dh]: the first half turned by rows, the second by columns."""
        return torch.cat((rotate(t[..., :half], row_angles),
                          rotate(t[..., half:], col_angles)), dim=-1)

    s = x.shape[1]
    full = torch.ones(s, s, dtype=torch.bool)
    for i in range(v["num_layers"]):
        x = encoder_block(w, x, f"vision_encoder.layers.{i}.", heads, eps, turn, full)
    x = F.layer_norm(x, (d,), w["vision_encoder.norm.weight"], w["vision_encoder.norm.bias"], eps)
    return project(w, x.reshape(s // (m * m), m * m * d), "vision_projector", context)


def ctc(cfg, logits, transcript):
    """torch's CTC loss per label of one item, the blank after the vocabulary."""
    log_probs = F.log_softmax(logits, dim=-1)[:, None, :]  # [T, 1, C]
    return F.ctc_loss(log_probs, transcript[None].long(), [logits.shape[0]], [len(transcript)],
                      blank=cfg["vocab_size"], reduction="mean", zero_infinity=True)


def embed(cfg, w, seq, ctc_losses):
    """Input embeddings [T, D] of one sequence: tokens, with each slice's rows from its media;
    appends the CTC loss of each transcribed audio item to ctc_losses."""
    tokens = w["model.embed_tokens.weight"][seq["ids"].long()]
    encoded = []
    for n, (kind, x) in enumerate(seq["media"]):
        if kind != "audio":
            encoded.append(encode_image(cfg, w, x))
            continue
        rows, logits = encode_audio(cfg, w, x)
        if logits is not None and n in seq["transcripts"]:
            ctc_losses.append(ctc(cfg, logits, seq["transcripts"][n]))
        encoded.append(rows)
    pieces, at = [], 0
    for media, audio, first, count, start in seq["slices"].tolist():
        assert audio == (seq["media"][media][0] == "audio")
        pieces += [tokens[at:start], encoded[media][first:first + count]]
        at = start + count
    pieces.append(tokens[at:])
    return torch.cat(pieces)


def loss(cfg, w, batch):
    """Mean next-token cross-entropy of a batch of sequences, zero-padded to the longest."""
    d = cfg["hidden_size"]
    t = max(len(seq["ids"]) for seq in batch)
    rows, positions, targets, ctc_losses = [], [], [], []
    for seq in batch:
        n = len(seq["ids"])
        rows.append(torch.cat((embed(cfg, w, seq, ctc_losses),
                               torch.zeros(t - n, d, dtype=torch.float64))))
        pad = seq["positions"].max() + 1 + torch.arange(t - n)
        positions.append(torch.cat((seq["positions"].long(), pad[None].expand(3, -1)), dim=1))
        targets.append(torch.cat((seq["targets"].long(), torch.full((t - n,), -100))))
    x, positions, targets = torch.stack(rows), torch.stack(positions), torch.stack(targets)

    b = x.shape[0]
    hq, hkv, hd = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    eps = cfg["rms_norm_eps"]
    sections = cfg["rope_scaling"]["mrope_section"]
    stream = torch.cat([torch.full((n,), i) for i, n in enumerate(sections)])
    # angles [B, T, hd / 2]: frequency j turns by the position of its stream.
    chosen = positions[:, stream, :].permute(0, 2, 1).to(torch.float64)
    angles = chosen * inverse_frequencies(hd, cfg["rope_theta"])
    for i in range(cfg["num_hidden_layers"]):
        pre = f"model.layers.{i}."
        h = rms_norm(x, w[pre + "input_layernorm.weight"], eps)
        q = rotate((h @ w[pre + "self_attn.q_proj.weight"].T).view(b, t, hq, hd), angles)
        k = rotate((h @ w[pre + "self_attn.k_proj.weight"].T).view(b, t, hkv, hd), angles)
        v = (h @ w[pre + "self_attn.v_proj.weight"].T).view(b, t, hkv, hd)
        a = attention(q, k, v, True).reshape(b, t, hq * hd)
        x = x + a @ w[pre + "self_attn.o_proj.weight"].T
        h = rms_norm(x, w[pre + "post_attention_layernorm.weight"], eps)
        gate = h @ w[pre + "mlp.gate_proj.weight"].T
        up = h @ w[pre + "mlp.up_proj.weight"].T
        x = x + (F.silu(gate) * up) @ w[pre + "mlp.down_proj.weight"].T
    x = rms_norm(x, w["model.norm.weight"], eps)
    logits = x @ w["model.embed_tokens.weight"].T
    value = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                            ignore_index=-100)
    if ctc_losses:
        value = value + cfg["audio_config"]["ctc_weight"] * torch.stack(ctc_losses).sum() / b
    return value


def parameter_shapes(cfg):
    """name -> shape of every parameter, in the order nuri lists them."""
    d, hd, inter = cfg["hidden_size"], cfg["head_dim"], cfg["intermediate_size"]
    hq, hkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    shapes = {"model.embed_tokens.weight": (cfg["vocab_size"], d)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        shapes[p + "input_layernorm.weight"] = (d,)
        shapes[p + "self_attn.q_proj.weight"] = (hq * hd, d)
        shapes[p + "self_attn.k_proj.weight"] = (hkv * hd, d)
        shapes[p + "self_attn.v_proj.weight"] = (hkv * hd, d)
        shapes[p + "self_attn.o_proj.weight"] = (d, hq * hd)
        shapes[p + "post_attention_layernorm.weight"] = (d,)
        shapes[p + "mlp.gate_proj.weight"] = (inter, d)
        shapes[p + "mlp.up_proj.weight"] = (inter, d)
        shapes[p + "mlp.down_proj.weight"] = (d, inter)
    shapes["model.norm.weight"] = (d,)

    def add_linear(prefix, n_in, n_out):
        """A biased linear layer from n_in to n_out."""
        shapes[prefix + ".weight"] = (n_out, n_in)
        shapes[prefix + ".bias"] = (n_out,)

    def add_blocks(prefix, cfg_section):
        """The encoder blocks and final LayerNorm of an encoder section."""
        width, inner = cfg_section["hidden_size"], cfg_section["intermediate_size"]
        for i in range(cfg_section["num_layers"]):
            p = f"{prefix}.layers.{i}."
            shapes[p + "input_layernorm.weight"] = (width,)
            shapes[p + "input_layernorm.bias"] = (width,)
            for proj in "qkvo":
                add_linear(p + f"self_attn.{proj}_proj", width, width)
            shapes[p + "post_attention_layernorm.weight"] = (width,)
            shapes[p + "post_attention_layernorm.bias"] = (width,)
            add_linear(p + "mlp.fc1", width, inner)
            add_linear(p + "mlp.fc2", inner, width)
        shapes[prefix + ".norm.weight"] = (width,)
        shapes[prefix + ".norm.bias"] = (width,)

    a = cfg["audio_config"]
    ad = a["hidden_size"]
    shapes["audio_encoder.conv1.weight"] = (ad, a["n_mels"], 3)
    shapes["audio_encoder.conv1.bias"] = (ad,)
    shapes["audio_encoder.conv2.weight"] = (ad, ad, 3)
    shapes["audio_encoder.conv2.bias"] = (ad,)
    add_blocks("audio_encoder", a)
    if a["ctc_weight"] > 0:
        add_linear("audio_encoder.ctc_head", ad, cfg["vocab_size"] + 1)
    add_linear("audio_projector.fc1", ad, a["output_size"])
    add_linear("audio_projector.fc2", a["output_size"], a["output_size"])
    shapes["audio_projector.norm.weight"] = (a["output_size"],)

    v = cfg["vision_config"]
    vd, channels = v["hidden_size"], 3
    for i, width in enumerate(v["stem_channels"]):
        shapes[f"vision_encoder.stem.conv{i + 1}.weight"] = (width, channels, 3, 3)
        shapes[f"vision_encoder.stem.conv{i + 1}.bias"] = (width,)
        channels = width
    add_linear("vision_encoder.patch_embed", v["temporal_patch_size"] * channels, vd)
    add_blocks("vision_encoder", v)
    merged = v["merge_size"] ** 2 * vd
    add_linear("vision_projector.fc1", merged, merged)
    add_linear("vision_projector.fc2", merged, v["output_size"])
    shapes["vision_projector.norm.weight"] = (v["output_size"],)
    if v["global_context"]:
        add_linear("vision_projector.global", v["context_grid"] ** 2 * v["stem_channels"][-1],
                   v["output_size"])
    return shapes


def random_weights(cfg, gen):
    """name -> float32 tensor: norm gains near one, small biases, fan-in scaled weights."""
    weights = {}
    for name, shape in parameter_shapes(cfg).items():
        if "norm" in name and name.endswith(".weight"):
            value = 1.0 + 0.2 * torch.randn(shape, generator=gen)
        elif name.endswith(".bias"):
            value = 0.1 * torch.randn(shape, generator=gen)
        elif name == "model.embed_tokens.weight":
            value = 0.3 * torch.randn(shape, generator=gen)
        else:
            # Scaled so that activations stay of order one through the blocks.
            fan_in = math.prod(shape[1:])
            value = torch.randn(shape, generator=gen) / math.sqrt(fan_in)
        weights[name] = value.to(torch.float32)
    return weights


def lay_out(cfg, turns, gen):
    """One sequence as the chat template lays it out (ids, targets, positions [3, T], slices)."""
    factor = cfg["vision_config"]["patch_size"] * cfg["vision_config"]["merge_size"]
    per_token = 2 * cfg["audio_config"]["pool_stride"]
    seconds_per_token = per_token / MEL_FRAMES_PER_SECOND
    ids, learn, t, h, w, slices = [], [], [], [], [], []
    state = {"next": 0, "top": -1, "media": 0}

    def token(i, target):
        """Appends a text or special token at the next position on all three streams."""
        ids.append(i)
        learn.append(target)
        for stream in (t, h, w):
            stream.append(state["next"])
        state["top"] = max(state["top"], state["next"])
        state["next"] += 1

    def media_row(pad, dt, dh, dw):
        """Appends a media row at (dt, dh, dw) from the span's first id."""
        base = state["next"]
        ids.append(pad)
        learn.append(False)
        t.append(base + dt)
        h.append(base + dh)
        w.append(base + dw)
        state["top"] = max(state["top"], base + dt, base + dh, base + dw)

    for role, parts in turns:
        target = role == ASSISTANT
        token(IM_START, False)
        token(role, False)
        for part in parts:
            if isinstance(part, int):
                for i in torch.randint(0, TEXT_IDS, (part,), generator=gen).tolist():
                    token(i, target)
                continue
            kind, size = part[:2]
            if kind == "image":
                grid_h, grid_w = size[0] // factor, size[1] // factor
                token(IMAGE_START, False)
                slices.append([state["media"], 0, 0, grid_h * grid_w, len(ids)])
                for r in range(grid_h):
                    for c in range(grid_w):
                        media_row(IMAGE_PAD, 0, r, c)
                end = IMAGE_END
            else:
                count = -(-size // per_token)
                token(AUDIO_START, False)
                slices.append([state["media"], 1, 0, count, len(ids)])
                for k in range(count):
                    dt = round(k * seconds_per_token / SECONDS_PER_TEMPORAL_ID)
                    media_row(AUDIO_PAD, dt, dt, dt)
                end = AUDIO_END
            state["next"] = state["top"] + 1
            state["media"] += 1
            token(end, False)
        token(IM_END, target)
    targets = [ids[i + 1] if learn[i + 1] else -100 for i in range(len(ids) - 1)] + [-100]
    return {"ids": torch.tensor(ids, dtype=torch.int32),
            "targets": torch.tensor(targets, dtype=torch.int32),
            "positions": torch.tensor([t, h, w], dtype=torch.int32),
            "slices": torch.tensor(slices, dtype=torch.int32)}


def random_pixels(size, gen):
    """A random 8-bit RGB image of size (H, W), normalised to f32 [3, H, W]."""
    rgb = torch.randint(0, 256, (3, *size), generator=gen).to(torch.float64)
    mean = torch.tensor(PIXEL_MEAN, dtype=torch.float64)[:, None, None]
    std = torch.tensor(PIXEL_STD, dtype=torch.float64)[:, None, None]
    return ((rgb / 255 - mean) / std).to(torch.float32)


def random_mel(cfg, frames, gen):
    """A log-mel-like f32 [n_mels, frames]: values around the (x + 4) / 4 scale's range."""
    return (0.5 * torch.randn((cfg["audio_config"]["n_mels"], frames), generator=gen)).to(
        torch.float32)


def f32(t):
    """A tensor as an F32 safetensors entry."""
    return ("F32", tuple(t.shape), t.detach().to(torch.float32).numpy().astype("<f4").tobytes())


def i32(t):
    """A tensor as an I32 safetensors entry."""
    return ("I32", tuple(t.shape), t.numpy().astype("<i4").tobytes())


def main():
    """Draws the model and the batch, runs forward and backward, writes the three files."""
    gen = torch.Generator().manual_seed(SEED)
    weights = random_weights(CONFIG, gen)
    batch = []
    for turns in SEQUENCES:
        seq = lay_out(CONFIG, turns, gen)
        items = [part for _, parts in turns for part in parts if not isinstance(part, int)]
        seq["media"] = [(part[0], random_pixels(part[1], gen) if part[0] == "image"
                         else random_mel(CONFIG, part[1], gen)) for part in items]
        seq["transcripts"] = {}
        for n, part in enumerate(items):
            if part[0] == "audio":  # text ids, the second label repeating the first
                labels = torch.randint(0, TEXT_IDS, (part[2],), generator=gen)
                labels[1] = labels[0]
                seq["transcripts"][n] = labels.to(torch.int32)
        batch.append(seq)

    w = {k: v.to(torch.float64).requires_grad_() for k, v in weights.items()}
    value = loss(CONFIG, w, [dict(s, media=[(kind, x.to(torch.float64)) for kind, x in s["media"]])
                             for s in batch])
    value.backward()

    os.makedirs(OUT, exist_ok=True)
    config = dict(CONFIG, architectures=["LlamaForCausalLM"], model_type="llama",
                  hidden_act="silu", torch_dtype="float32", initializer_range=0.02,
                  attention_bias=False, bos_token_id=None, eos_token_id=IM_END)
    with open(os.path.join(OUT, "config.json"), "w") as out:
        json.dump(config, out, indent=2)
        out.write("\n")
    write_safetensors(os.path.join(OUT, "model.safetensors"),
                      {k: f32(v) for k, v in weights.items()})
    golden = {}
    for b, seq in enumerate(batch):
        for key in ("ids", "targets", "positions", "slices"):
            golden[f"{b}.{key}"] = i32(seq[key])
        for n, (kind, x) in enumerate(seq["media"]):
            golden[f"{b}.media{n}.{'pixels' if kind == 'image' else 'mel'}"] = f32(x)
        for n, labels in seq["transcripts"].items():
            golden[f"{b}.media{n}.transcript"] = i32(labels)
    golden["loss"] = f32(value.reshape(()))
    for name, t in w.items():
        assert t.grad is not None and t.grad.abs().max() > 0, name
        golden["grad." + name] = f32(t.grad)
    write_safetensors(os.path.join(OUT, "golden.safetensors"), golden)
    lengths = [len(seq["ids"]) for seq in batch]
    print(f"omni: sequences of {lengths} tokens, {len(w)} parameters "
          f"({sum(t.numel() for t in w.values())} values), loss {value.item():.6f}")


if __name__ == "__main__":
    main()
