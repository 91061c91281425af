"""What the PyTorch peer runs on: Debian's python3-torch uses whatever libblas.so.3 points to, and
with the reference (netlib) BLAS it is about 10x slower, so every comparison reports it. With
OpenBLAS it also reports the kernels OpenBLAS chose: on a CPU model newer than the library knows
it falls back to SSE3 ones ("Prescott"), which nuri's programs replace (`nuri --version` names
theirs); run the comparison with OPENBLAS_CORETYPE set to nuri's choice so both sides match."""
import ctypes
import subprocess


def blas_in_use():
    """The library behind libblas.so.3 (update-alternatives), or "unknown"."""
    try:
        out = subprocess.run(["update-alternatives", "--query", "libblas.so.3-x86_64-linux-gnu"],
                             capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Value:"):
                path = line.split(":", 1)[1].strip()
                return f"{path} ({openblas_kernels(path)} kernels)" if "openblas" in path else path
    except FileNotFoundError:
        pass
    return "unknown"


def openblas_kernels(path):
    """The kernel family that the OpenBLAS at `path` runs on this CPU."""
    try:
        library = ctypes.CDLL(path)
        library.openblas_get_corename.restype = ctypes.c_char_p
        return library.openblas_get_corename().decode()
    except (OSError, AttributeError):
        return "unknown"
