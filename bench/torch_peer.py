"""What the PyTorch peer runs on: Debian's python3-torch uses whatever libblas.so.3 points to, and
with the reference (netlib) BLAS it is about 10x slower, so every comparison reports it."""
import subprocess


def blas_in_use():
    """The library behind libblas.so.3 (update-alternatives), or "unknown"."""
    try:
        out = subprocess.run(["update-alternatives", "--query", "libblas.so.3-x86_64-linux-gnu"],
                             capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Value:"):
                return line.split(":", 1)[1].strip()
    except FileNotFoundError:
        pass
    return "unknown"
