#!/usr/bin/env python3
"""`srun --mpi=pmix --kill-on-bad-exit=1 -n 2 nuri train` on a private one-node Slurm cluster
(munged, slurmctld and slurmd started here, in WORK_DIR, on free ports) gives the losses and
parameters of one rank with twice the gradient accumulation, within 1e-6 relative; srun without
the MPI plugin is refused with advice.

The daemons need root (slurmd launches the job steps): run as another user, the test says so
and returns CTest's skip code.

Usage: slurm_train_test.py NURI_BINARY SOURCE_DIR WORK_DIR
"""
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from mpi_train_test import assert_same_run, config, train  # noqa: E402

SKIP = 77


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """munged, slurmctld and slurmd for this machine alone, stopped on exit."""

    def __init__(self, work: pathlib.Path):
        self.work = work
        self.processes = []
        host = socket.gethostname().split(".")[0]
        for sub in ("state", "spool"):
            (work / sub).mkdir(parents=True)
        key = work / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        conf = work / "slurm.conf"
        conf.write_text(f"""ClusterName=nuri-test
SlurmctldHost={host}(127.0.0.1)
AuthType=auth/munge
AuthInfo=socket={work}/munge.socket
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={work}/state
SlurmdSpoolDir={work}/spool
SlurmctldPidFile={work}/slurmctld.pid
SlurmdPidFile={work}/slurmd.pid
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
SlurmctldLogFile={work}/slurmctld.log
SlurmdLogFile={work}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
NodeName={host} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} State=UNKNOWN
PartitionName=test Nodes={host} Default=YES MaxTime=INFINITE State=UP
""")
        self.env = dict(os.environ, SLURM_CONF=str(conf))
        try:
            self.start(work, key)
        except BaseException:
            self.stop()
            raise

    def start(self, work: pathlib.Path, key: pathlib.Path) -> None:
        subprocess.run(["munged", f"--socket={work}/munge.socket", f"--key-file={key}",
                        f"--pid-file={work}/munged.pid", f"--log-file={work}/munged.log",
                        f"--seed-file={work}/munge.seed", "--force"], check=True)
        for daemon in (["slurmctld", "-D", "-i"], ["slurmd", "-D"]):
            log = open(work / f"{daemon[0]}.out", "w")
            self.processes.append(subprocess.Popen(daemon, env=self.env, stdout=log, stderr=log))
        deadline = time.time() + 60
        while time.time() < deadline:
            state = subprocess.run(["sinfo", "-h", "-o", "%T"], env=self.env, capture_output=True,
                                   text=True).stdout.strip()
            if state == "idle":
                return
            time.sleep(0.5)
        raise AssertionError(f"the node never became idle (sinfo: {state!r}); see {work}")

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        pid = self.work / "munged.pid"
        if pid.exists():
            os.kill(int(pid.read_text()), 15)
            deadline = time.time() + 30
            while pid.exists() and time.time() < deadline:  # munged removes it on its way out
                time.sleep(0.05)


def main(nuri: str, source: pathlib.Path, work: pathlib.Path) -> int:
    if os.geteuid() != 0:
        print("SKIPPED: the private Slurm cluster's slurmd needs root")
        return SKIP
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    train(nuri, None, config(work, source, "one", accum=2, zero=0), 1)
    cluster = Cluster(work / "slurm")
    try:
        command = ["srun", "--mpi=pmix", "--kill-on-bad-exit=1", "-n", "2", nuri, "train",
                   str(config(work, source, "srun", accum=1, zero=1))]
        done = subprocess.run(command, env=cluster.env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{' '.join(command)}: exit {done.returncode}\n{done.stderr}"
        assert "2 data-parallel ranks (ZeRO-1)" in done.stderr, done.stderr
        plain = ["srun", "--mpi=none", "--kill-on-bad-exit=1", "-n", "2", nuri, "train",
                 str(config(work, source, "no-pmi", accum=1, zero=0))]
        refused = subprocess.run(plain, env=cluster.env, capture_output=True, text=True, timeout=120)
        assert refused.returncode != 0 and "run srun --mpi=pmix" in refused.stderr, refused.stderr
    finally:
        cluster.stop()
    assert_same_run(work / "one", work / "srun", range(1, 31))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])))
