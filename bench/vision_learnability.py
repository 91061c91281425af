#!/usr/bin/python3
"""How fast encoder designs learn shapes from the synthetic corpus, in PyTorch on the CPU.

Trains each design from scratch as a plain 7-way shape classifier on the `image_shape` images of
a `nuri data synth` corpus (train split) and prints train and test accuracy as it goes. The ViT
matches nuri's tiny vision encoder (14-pixel patches, 3 layers, 128 wide); the others add a
convolutional stem or are a small CNN, to tell what the data lets an encoder learn at this size.
The through-decoder and td-* designs read the shape from a from-scratch causal decoder that sees
the encoder's tokens, as the omni model does, rather than from a classifier head.

Usage: bench/vision_learnability.py CORPUS_DIR [--steps N] [--lr LR] [--side PIXELS]
           [--designs vit,stem-max,stem-deep,cnn,through-decoder,td-max,td-max-nonorm,td-hybrid,
                      td-hybrid-direct,td-cnn,td-cnn-normed]
Needs Debian's python3-torch and numpy, and ffmpeg to read the PNGs.
"""
import argparse
import json
import os
import time

import numpy as np
import torch
import torch.nn as nn

from visual_tokens import load_pixels

KOREAN_SHAPES = {"원": "circle", "사각형": "square", "삼각형": "triangle", "별": "star",
                 "육각형": "hexagon", "십자가": "cross", "마름모": "diamond"}


def shape_split(corpus, split):
    # the decoded images, kept between runs (ffmpeg per image is the slow part)
    cache = f"/tmp/vision_learnability{os.path.abspath(corpus).replace('/', '_')}_{split}.npz"
    if os.path.exists(cache):
        saved = np.load(cache)
        return torch.tensor(saved["images"]), list(saved["labels"])
    images, labels = [], []
    for line in open(f"{corpus}/{split}.jsonl", encoding="utf-8"):
        sample = json.loads(line)
        if sample["task"] != "image_shape":
            continue
        part = next(p for p in sample["messages"][0]["content"] if p["type"] == "image")
        images.append(load_pixels(f"{corpus}/{part['path']}"))
        labels.append(KOREAN_SHAPES.get(sample["answer"], sample["answer"]))
    images = np.stack(images).astype(np.float32)
    np.savez(cache, images=images, labels=np.array(labels))
    return torch.tensor(images), labels


class ViT(nn.Module):
    """Patches (linear, or a conv stem max-pooled per patch), a pre-norm transformer, mean pool."""

    def __init__(self, side, classes, stem_channels=0, patch=14, width=128, layers=3, deep=False,
                 stages=()):
        super().__init__()
        self.patch = patch
        self.stem = None
        conv = lambda i, o: [nn.Conv2d(i, o, 3, padding=1), nn.GELU()]
        if stages:
            # conv + GELU + 2x2 max-pool per stage: the patch is 2^stages pixels
            widths = (3,) + tuple(stages)
            self.stem = nn.Sequential(*[layer for i in range(len(stages))
                                        for layer in conv(widths[i], widths[i + 1])
                                        + [nn.MaxPool2d(2)]])
            self.patch = 1
            stem_channels = stages[-1]
            patch = 2 ** len(stages)
        elif stem_channels and deep:
            # full resolution, 2x2 max-pool, then two convs at half resolution
            c = stem_channels
            self.stem = nn.Sequential(*conv(3, c), nn.MaxPool2d(2), *conv(c, 2 * c),
                                      *conv(2 * c, 2 * c))
            self.patch = patch // 2
            stem_channels = 2 * c
        elif stem_channels:
            self.stem = nn.Sequential(*conv(3, stem_channels), *conv(stem_channels, stem_channels))
        inputs = stem_channels if stem_channels else 3 * patch * patch
        self.embed = nn.Linear(inputs, width)
        self.position = nn.Parameter(torch.randn((side // patch) ** 2, width) * 0.02)
        self.grid = side // patch
        block = nn.TransformerEncoderLayer(width, 4, 3 * width, 0.0, batch_first=True,
                                           norm_first=True, activation="gelu")
        self.blocks = nn.TransformerEncoder(block, layers) if layers else nn.Identity()
        self.norm = nn.LayerNorm(width) if layers else nn.Identity()
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        p = self.patch
        if self.stem is not None:
            tokens = nn.functional.max_pool2d(self.stem(x), p).flatten(2).transpose(1, 2)
        else:
            tokens = x.unfold(2, p, p).unfold(3, p, p).permute(0, 2, 3, 1, 4, 5)
            tokens = tokens.reshape(x.shape[0], -1, 3 * p * p)
        hidden = self.blocks(self.embed(tokens) + self.position)
        return self.head(self.norm(hidden).mean(1))


class ThroughDecoder(nn.Module):
    """The omni path in miniature: a ViT's tokens, merged 2x2 and projected (MLP, RMSNorm) as
    nuri's vision projector does, precede a few learned question tokens in a from-scratch causal
    decoder (pre-norm, width 192, 4 layers), whose last position predicts the shape."""

    def __init__(self, side, classes, stem_channels=32, width=192, layers=4, question=8,
                 deep=True, norm=True, vit_layers=3, stages=()):
        super().__init__()
        self.vit = ViT(side, classes, stem_channels=stem_channels, deep=deep, layers=vit_layers,
                       stages=stages)
        self.norm = norm
        d = self.vit.embed.out_features
        self.projector = nn.Sequential(nn.Linear(4 * d, 4 * d), nn.GELU(), nn.Linear(4 * d, width))
        self.gain = nn.Parameter(torch.ones(width))
        self.question = nn.Parameter(torch.randn(question, width) * 0.02)
        grid = self.vit.grid
        self.position = nn.Parameter(torch.randn(grid * grid // 4 + question, width) * 0.02)
        block = nn.TransformerEncoderLayer(width, 4, 3 * width, 0.0, batch_first=True,
                                           norm_first=True, activation="gelu")
        self.decoder = nn.TransformerEncoder(block, layers)
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        vit, p = self.vit, self.vit.patch
        tokens = nn.functional.max_pool2d(vit.stem(x), p)  # [B, C, g, g]
        b, c, g, _ = tokens.shape
        hidden = vit.blocks(vit.embed(tokens.flatten(2).transpose(1, 2)) + vit.position)
        hidden = vit.norm(hidden).reshape(b, g // 2, 2, g // 2, 2, -1).permute(0, 1, 3, 2, 4, 5)
        merged = self.projector(hidden.reshape(b, (g // 2) ** 2, -1))
        if self.norm:
            merged = merged * torch.rsqrt(merged.pow(2).mean(-1, keepdim=True) + 1e-6) * self.gain
        sequence = torch.cat([merged, self.question.expand(b, -1, -1)], 1) + self.position
        mask = nn.Transformer.generate_square_subsequent_mask(sequence.shape[1])
        return self.head(self.decoder(sequence, mask=mask)[:, -1])


class CnnThroughDecoder(nn.Module):
    """The CNN's feature map (7x7 at 112 pixels) as tokens (linear to the decoder width) ahead of learned
    question tokens in the same from-scratch causal decoder as ThroughDecoder. With `normed`, the
    tokens take nuri's path instead: a linear patch embedding, LayerNorm, a linear projector and
    RMSNorm with a learned gain."""

    def __init__(self, side, classes, width=192, layers=4, question=8, normed=False):
        super().__init__()
        self.cnn = CNN(classes)
        self.embed = nn.Linear(128, width)
        if normed:
            self.embed = nn.Sequential(nn.Linear(128, 128), nn.LayerNorm(128), nn.Linear(128, width),
                                       nn.RMSNorm(width) if hasattr(nn, "RMSNorm") else RmsNorm(width))
        self.question = nn.Parameter(torch.randn(question, width) * 0.02)
        self.position = nn.Parameter(torch.randn((side // 16) ** 2 + question, width) * 0.02)
        block = nn.TransformerEncoderLayer(width, 4, 3 * width, 0.0, batch_first=True,
                                           norm_first=True, activation="gelu")
        self.decoder = nn.TransformerEncoder(block, layers)
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        tokens = self.embed(self.cnn.features(x).flatten(2).transpose(1, 2))
        b = tokens.shape[0]
        sequence = torch.cat([tokens, self.question.expand(b, -1, -1)], 1) + self.position
        mask = nn.Transformer.generate_square_subsequent_mask(sequence.shape[1])
        return self.head(self.decoder(sequence, mask=mask)[:, -1])


class RmsNorm(nn.Module):
    """x / rms(x) * gain, per token."""

    def __init__(self, width):
        super().__init__()
        self.gain = nn.Parameter(torch.ones(width))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.gain


class CNN(nn.Module):
    """Four 3x3 conv + GELU + 2x2 max-pool stages, then a global max."""

    def __init__(self, classes):
        super().__init__()
        stage = lambda i, o: nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.GELU(),
                                           nn.MaxPool2d(2))
        self.features = nn.Sequential(stage(3, 32), stage(32, 64), stage(64, 128),
                                      stage(128, 128))
        self.head = nn.Linear(128, classes)

    def forward(self, x):
        return self.head(self.features(x).amax((2, 3)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--designs", default="vit,stem-max,cnn")
    parser.add_argument("--side", type=int, default=0, help="resize the images to this side")
    args = parser.parse_args()
    torch.set_num_threads(2)
    train_x, train_names = shape_split(args.corpus, "train")
    test_x, test_names = shape_split(args.corpus, "test")
    names = sorted(set(train_names))
    train_y = torch.tensor([names.index(n) for n in train_names])
    test_y = torch.tensor([names.index(n) for n in test_names])
    print(f"{len(train_y)} train and {len(test_y)} test images, {len(names)} shapes "
          f"(chance {1 / len(names):.0%})")
    if args.side:
        resize = lambda x: nn.functional.interpolate(x, size=(args.side, args.side),
                                                     mode="bilinear", align_corners=False)
        train_x, test_x = resize(train_x), resize(test_x)
    side = train_x.shape[-1]
    designs = {"vit": lambda: ViT(side, len(names)),
               "stem-max": lambda: ViT(side, len(names), stem_channels=32),
               "stem-deep": lambda: ViT(side, len(names), stem_channels=32, deep=True),
               "through-decoder": lambda: ThroughDecoder(side, len(names)),
               "td-max": lambda: ThroughDecoder(side, len(names), deep=False),
               "td-max-nonorm": lambda: ThroughDecoder(side, len(names), deep=False, norm=False),
               "td-cnn": lambda: CnnThroughDecoder(side, len(names)),
               "td-cnn-normed": lambda: CnnThroughDecoder(side, len(names), normed=True),
               "td-hybrid": lambda: ThroughDecoder(side, len(names), stages=(32, 64, 128, 128)),
               "td-hybrid-direct": lambda: ThroughDecoder(side, len(names),
                                                          stages=(32, 64, 128, 128),
                                                          vit_layers=0, norm=False),
               "cnn": lambda: CNN(len(names))}
    for design in args.designs.split(","):
        torch.manual_seed(0)
        model = designs[design]()
        optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.05)
        start = time.time()
        for step in range(1, args.steps + 1):
            batch = torch.randint(0, len(train_y), (args.batch,))
            loss = nn.functional.cross_entropy(model(train_x[batch]), train_y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if step % 250 == 0 or step == args.steps:
                with torch.no_grad():
                    train_acc = (model(train_x).argmax(1) == train_y).float().mean().item()
                    test_acc = (model(test_x).argmax(1) == test_y).float().mean().item()
                print(f"{design:9s} step {step:5d}: train {train_acc:6.1%}  test {test_acc:6.1%}"
                      f"  ({time.time() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
