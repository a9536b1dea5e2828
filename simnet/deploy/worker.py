"""One rank of a real run: `python -m simnet.deploy.worker JOB.json RANK`.

The launcher (loopback: `launch.run_local`; emulated cluster: `netns.run_emulated`) writes a
job file and starts K of these. Each joins a gloo process group, runs the job's tasks in
order, and writes `rank<R>.json` (a list with one result per task) into the job's folder.

Job file keys: world_size, master_addr, master_port, timeout_s, tasks (list of dicts with a
`kind`: bench | payload | pingpong | aggregate | train; see bench.py and ddp_run.py).
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import traceback
from pathlib import Path


def _init(job: dict, rank: int) -> None:
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)  # ranks share few cores: one thread each avoids oversubscription
    os.environ["MASTER_ADDR"] = job["master_addr"]
    os.environ["MASTER_PORT"] = str(job["master_port"])
    dist.init_process_group("gloo", rank=rank, world_size=job["world_size"],
                            timeout=datetime.timedelta(seconds=job.get("timeout_s", 120)))


def run(job_path: str, rank: int) -> int:
    import torch.distributed as dist

    from . import bench, ddp_run

    folder = Path(job_path).parent
    job = json.loads(Path(job_path).read_text())
    out: list = []
    status = 0
    try:
        _init(job, rank)
        handlers = {"bench": bench.run_bench, "payload": bench.run_payload,
                    "pingpong": bench.run_pingpong, "train": ddp_run.run_train,
                    "aggregate": bench.run_aggregate}
        for task in job["tasks"]:
            out.append(handlers[task["kind"]](task, rank))
    except Exception:  # the launcher reports this rank's traceback
        out.append({"error": traceback.format_exc()})
        status = 1
    finally:
        tmp = folder / f".rank{rank}.json.tmp"
        tmp.write_text(json.dumps(out))
        tmp.replace(folder / f"rank{rank}.json")
        if dist.is_initialized():
            dist.destroy_process_group()
    return status


if __name__ == "__main__":
    code = run(sys.argv[1], int(sys.argv[2]))
    # results are on disk and the group destroyed: leave without the interpreter's teardown,
    # where C++ destructors of torch/gloo background threads once aborted a finished rank
    # ("terminate called without an active exception", exit -6, which fails the run)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
