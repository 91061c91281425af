#!/usr/bin/env python3
"""`mpirun -np 2 nuri train` on the CPU, against one process:

- two ranks follow one rank with twice the gradient accumulation (losses and parameters within
  1e-6 relative), with ZeRO-0 and with ZeRO-1;
- ZeRO-1's checkpoint (one optimizer shard per rank) resumes on one rank and on two, matching the
  uninterrupted run;
- a rank killed mid-run stops the job with a non-zero exit naming that rank, and rerunning with
  --resume finishes the run; a rank that hangs stops the job within parallel.timeout_s.

Usage: mpi_train_test.py NURI_BINARY MPIRUN SOURCE_DIR WORK_DIR
"""
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from safetensors_io import read_safetensors  # noqa: E402
from tiny_text import losses, tiny_text_config  # noqa: E402

STEPS, EVERY, TOLERANCE = 30, 10, 1e-6
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1")


def config(work: pathlib.Path, source: pathlib.Path, name: str, accum: int, zero: int,
           steps: int = STEPS, timeout: float = 60) -> pathlib.Path:
    # Small buckets, so that several reductions overlap each backward.
    return tiny_text_config(work, source, name, steps, EVERY, keep=100, warmup=5,
                            train={"grad_accum": accum},
                            parallel={"zero": zero, "bucket_mb": 0.01, "timeout_s": timeout})


def train(nuri, mpirun, cfg, ranks, *extra):
    command = [nuri, "train", str(cfg), *extra]
    if ranks > 1:
        command = [mpirun, "-np", str(ranks), *command]
    done = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=600)
    assert done.returncode == 0, f"{' '.join(command)}: exit {done.returncode}\n{done.stderr}"
    return done.stderr


def relative(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-30)


def assert_same_run(reference: pathlib.Path, other: pathlib.Path, steps) -> None:
    ref, got = losses(reference), losses(other)
    assert sorted(got) == list(steps), f"{other}: steps {sorted(got)[:3]}..{sorted(got)[-3:]}"
    worst = max(relative(ref[s], got[s]) for s in steps)
    assert worst <= TOLERANCE, f"{other}: loss differs from {reference} by {worst:.2e} relative"
    a = read_safetensors(reference / f"step-{STEPS}" / "model.safetensors")
    b = read_safetensors(other / f"step-{STEPS}" / "model.safetensors")
    assert a.keys() == b.keys(), f"{other}: other tensors than {reference}"
    for name, (shape, values) in a.items():
        scale = max(max(abs(v) for v in values), 1e-30)
        worst = max(abs(x - y) for x, y in zip(values, b[name][1])) / scale
        assert b[name][0] == shape and worst <= TOLERANCE, f"{other}: {name} differs by {worst:.2e}"
    print(f"{other.name}: {len(got)} losses and every parameter within {TOLERANCE} of {reference.name}")


def rank_process(launcher: subprocess.Popen, rank: int) -> int:
    """The pid of `rank` among the launcher's children, found by the rank mpirun gave it."""
    deadline = time.time() + 60
    while time.time() < deadline:
        for pid in subprocess.run(["pgrep", "-P", str(launcher.pid)], capture_output=True,
                                  text=True).stdout.split():
            try:
                environ = pathlib.Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if f"OMPI_COMM_WORLD_RANK={rank}".encode() in environ:
                return int(pid)
        time.sleep(0.05)
    raise AssertionError(f"rank {rank} never started")


def faulty_run(nuri, mpirun, cfg, run: pathlib.Path, how: signal.Signals, timeout: float) -> str:
    """Starts 2 ranks, sends `how` to rank 1 after the first checkpoint, and returns stderr."""
    launcher = subprocess.Popen([mpirun, "-np", "2", nuri, "train", str(cfg)], env=ENV,
                                stderr=subprocess.PIPE, text=True)
    victim = rank_process(launcher, 1)
    while not (run / f"step-{EVERY}").is_dir():
        assert launcher.poll() is None, f"the run ended (exit {launcher.returncode}) early"
        time.sleep(0.01)
    os.kill(victim, how)
    hit = time.time()
    _, err = launcher.communicate(timeout=timeout + 60)
    took = time.time() - hit
    assert launcher.returncode != 0, f"{how.name} to rank 1: the job exited 0\n{err}"
    assert took <= timeout + 30, f"{how.name} to rank 1: the job took {took:.0f} s to stop"
    print(f"{how.name} to rank 1: the job stopped in {took:.1f} s with exit {launcher.returncode}")
    return err


def main(nuri: str, mpirun: str, source: pathlib.Path, work: pathlib.Path) -> int:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    steps = range(1, STEPS + 1)
    train(nuri, mpirun, config(work, source, "one", accum=2, zero=0), 1)
    for zero in (0, 1):
        name = f"two-zero{zero}"
        out = train(nuri, mpirun, config(work, source, name, accum=1, zero=zero), 2)
        assert f"2 data-parallel ranks (ZeRO-{zero})" in out, out
        assert "[rank 1] nuri info" not in out, "rank 1 logs what rank 0 already says"
        assert_same_run(work / "one", work / name, steps)
    shards = sorted(p.name for p in (work / "two-zero1" / f"step-{EVERY}").glob("optimizer*"))
    assert shards == ["optimizer-rank-0-of-2.safetensors", "optimizer-rank-1-of-2.safetensors"], shards

    # ZeRO-1's step-10 resumed on 1 rank (ZeRO-0, twice the accumulation) and on 2 ranks.
    start = work / "two-zero1" / f"step-{EVERY}"
    resumed_steps = range(EVERY + 1, STEPS + 1)
    for name, ranks, accum, zero in (("resume-1", 1, 2, 0), ("resume-2", 2, 1, 1)):
        out = train(nuri, mpirun, config(work, source, name, accum, zero), ranks, "--resume", str(start))
        assert f"resuming from {start} at step {EVERY}" in out, out
        assert_same_run(work / "two-zero1", work / name, resumed_steps)

    # A killed rank: mpirun stops the job and names the rank; --resume then finishes the run.
    cfg = config(work, source, "killed", accum=1, zero=1, steps=3000, timeout=20)
    err = faulty_run(nuri, mpirun, cfg, work / "killed", signal.SIGKILL, timeout=20)
    assert "rank 1" in err, err
    saved = sorted(int(p.name[5:]) for p in (work / "killed").glob("step-*"))
    assert saved and saved[-1] < 3000, saved
    out = train(nuri, mpirun, cfg, 2, "--resume", str(work / "killed"))
    assert f"at step {saved[-1]}" in out and "finished at step 3000" in out, out

    # A hung rank (stopped): the others give up after parallel.timeout_s and say why.
    cfg = config(work, source, "hung", accum=1, zero=0, steps=100000, timeout=5)
    err = faulty_run(nuri, mpirun, cfg, work / "hung", signal.SIGSTOP, timeout=5)
    assert "[rank 0] nuri error:" in err and "did not complete within 5 s" in err, err
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3]), pathlib.Path(sys.argv[4])))
