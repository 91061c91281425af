#!/usr/bin/env python3
"""Fails when a layer includes or links a layer it may not use (docs/architecture.md, Layers)."""
import pathlib
import re
import sys

ALLOWED = {
    "kernels": set(),
    "media": {"kernels"},
    "encoders": {"kernels", "media"},
    "decoder": {"kernels"},
    "fusion": {"kernels", "media", "encoders", "decoder"},
    "train": {"kernels", "media", "encoders", "decoder", "fusion"},
    "serve": {"kernels", "media", "encoders", "decoder", "fusion"},
    "cli": {"kernels", "media", "encoders", "decoder", "fusion", "train", "serve"},
    "include": set(),
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"/]+)/')
LINK = re.compile(r"nuri::(\w+)")


def main(root: pathlib.Path) -> int:
    faults = []
    for layer, allowed in ALLOWED.items():
        folder = root / layer
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            if path.suffix in {".h", ".cpp", ".cu", ".cuh"}:
                for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                    match = INCLUDE.match(line)
                    if match and match.group(1) in ALLOWED and match.group(1) not in allowed | {layer}:
                        faults.append(f"{path.relative_to(root)}:{number}: {layer} may not include {match.group(1)}")
            elif path.name == "CMakeLists.txt":
                for number, line in enumerate(path.read_text().splitlines(), 1):
                    for used in LINK.findall(line):
                        if used in ALLOWED and used not in allowed | {layer}:
                            faults.append(f"{path.relative_to(root)}:{number}: {layer} may not link nuri::{used}")
    for fault in faults:
        print(fault)
    print(f"layering: {len(faults)} violations")
    return 1 if faults else 0


if __name__ == "__main__":
    sys.exit(main(pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()))
