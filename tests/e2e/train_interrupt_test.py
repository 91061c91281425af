#!/usr/bin/env python3
"""`nuri train` stopped by kill -9 between checkpoints, or by SIGINT, then resumed with --resume,
gives the same loss at every step as an uninterrupted run, and loses nothing that was saved.

Usage: train_interrupt_test.py NURI_BINARY SOURCE_DIR WORK_DIR
"""
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from tiny_text import losses, tiny_text_config  # noqa: E402

STEPS, EVERY = 1500, 250


def config(work: pathlib.Path, source: pathlib.Path, name: str) -> pathlib.Path:
    return tiny_text_config(work, source, name, STEPS, EVERY, keep=2, warmup=20)


def wait_for(path: pathlib.Path, process: subprocess.Popen) -> None:
    while not path.exists():
        assert process.poll() is None, f"run ended (code {process.returncode}) before {path} appeared"
        time.sleep(0.005)


def interrupted_run(nuri: str, cfg: pathlib.Path, run: pathlib.Path, how: signal.Signals) -> None:
    process = subprocess.Popen([nuri, "train", str(cfg)], stderr=subprocess.PIPE, text=True)
    wait_for(run / f"step-{EVERY}", process)
    process.send_signal(how)
    _, err = process.communicate(timeout=120)
    expected = -signal.SIGKILL if how == signal.SIGKILL else 130
    assert process.returncode == expected, f"{how.name}: exit code {process.returncode}\n{err}"
    steps = sorted(int(p.name[5:]) for p in run.glob("step-*"))
    assert steps and steps[-1] < STEPS, f"{how.name} came too late to interrupt the run: {steps}"
    if how == signal.SIGINT:  # the run saves where it stopped
        stopped = re.search(r"interrupted at step (\d+)", err)
        assert stopped and (run / f"step-{stopped.group(1)}").is_dir(), err
    assert not list(run.glob(".step-*")) or how == signal.SIGKILL, "temporary checkpoint left behind"
    resumed = subprocess.run([nuri, "train", str(cfg), "--resume", str(run)], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming from {run}/step-" in resumed.stderr, resumed.stderr


def main(nuri: str, source: pathlib.Path, work: pathlib.Path) -> int:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    whole = subprocess.run([nuri, "train", str(config(work, source, "whole"))], capture_output=True, text=True)
    assert whole.returncode == 0, whole.stderr
    reference = losses(work / "whole")
    assert sorted(reference) == list(range(1, STEPS + 1))
    for how in (signal.SIGKILL, signal.SIGINT):
        name = how.name.lower()
        interrupted_run(nuri, config(work, source, name), work / name, how)
        got = losses(work / name)
        assert sorted(got) == list(range(1, STEPS + 1)), f"{name}: steps {sorted(got)[:5]}..."
        mismatched = [step for step in reference if got[step] != reference[step]]
        assert not mismatched, f"{name}: losses differ from the uninterrupted run at steps {mismatched[:5]}"
        print(f"{name}: interrupted, resumed, {STEPS} losses identical to the uninterrupted run")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])))
