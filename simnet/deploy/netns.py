"""Emulated cluster: K ranks, each in its own network namespace, on a shaped star.

    host ──(nothing)            hub namespace (`unshare --net`, one per run)
                                  bridge sn-br = the star's switch
                                  ├─ snh0 ══veth══ sne0  rank 0 namespace (10.77.0.1)
                                  ├─ snh1 ══veth══ sne1  rank 1 namespace (10.77.0.2)
                                  └─ ...
Each direction of each link is shaped with `tc ... tbf` to the scenario's bandwidth: rank→
switch on sneR (egress in the rank's namespace), switch→rank on snhR (egress in the hub). This
kernel has no netem, so no delay is added: the emulated latency is the software's own
(calibrated as alpha). Everything lives in namespaces created for the run; when the hub
process exits (or is killed) the kernel removes them with every veth, bridge and qdisc, so
nothing outside is touched. Rank namespaces are held by `unshare --net sleep` processes that
the hub starts and kills; ranks join them with `nsenter`.

Keep ranks <= cores and rates <= ~200 Mbit/s, else the CPU, not the link, is measured: the
hub measures an unshaped TCP transfer first and warns when it is not >= 10x the rate.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .launch import RunFailed, merge, run_job

__all__ = ["available", "run_emulated", "MAX_RATE_BPS"]

MAX_RATE_BPS = 200e6  # above this the CPU, not the shaped link, tends to be the bottleneck
SUBNET = "10.77.0"


@functools.lru_cache(maxsize=1)
def available() -> tuple[bool, str]:
    """(True, "") when an emulated cluster can run here, else (False, the reason)."""
    if os.geteuid() != 0:
        return False, "needs root (network namespaces, veth, tc)"
    missing = [t for t in ("unshare", "nsenter", "ip", "tc") if shutil.which(t) is None]
    if missing:
        return False, f"missing tools: {', '.join(missing)}"
    trial = "ip link add dev snt0 type veth peer name snt1 && ip link add dev snt2 type bridge"
    try:
        r = subprocess.run(["unshare", "--net", "--", "sh", "-c", trial], capture_output=True,
                           text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as err:
        return False, f"network namespaces unavailable ({err})"
    if r.returncode != 0:
        return False, f"network namespaces/veth/bridge unavailable: {r.stderr.strip()[:200]}"
    return True, ""


def _sh(*cmd: str, pid: int | None = None) -> str:
    """Run one command (in rank namespace `pid` if given); raise with its stderr."""
    full = (["nsenter", f"--net=/proc/{pid}/ns/net", "--"] if pid else []) + list(cmd)
    r = subprocess.run(full, capture_output=True, text=True, timeout=20)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(full)}: {r.stderr.strip()}")
    return r.stdout


def tbf_args(rate_bps: float) -> list[str]:
    """tbf parameters: bucket of ~2 ms (>= 3 frames) so bursts stay small against a transfer;
    a 50 ms queue: deep enough that TCP rarely drops, shallow enough that ACKs riding
    behind data (one duplex gloo connection per pair) are not delayed much."""
    burst = max(3 * 1514, int(rate_bps / 8 * 0.002))
    return ["rate", f"{int(rate_bps)}bit", "burst", str(burst), "latency", "50ms"]


class Cluster:
    """The namespaces and links of one run; call inside the hub namespace."""

    def __init__(self, workers: int, hold_s: float):
        self.workers, self.hold_s = workers, hold_s
        self.holders: list[subprocess.Popen] = []

    def __enter__(self) -> "Cluster":
        try:
            self._build()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _build(self) -> None:
        _sh("ip", "link", "set", "dev", "lo", "up")
        _sh("ip", "link", "add", "dev", "sn-br", "type", "bridge")
        _sh("ip", "link", "set", "dev", "sn-br", "up")
        own = os.readlink("/proc/self/ns/net")
        for r in range(self.workers):
            h = subprocess.Popen(["unshare", "--net", "--", "sleep", str(int(self.hold_s))],
                                 start_new_session=True)
            self.holders.append(h)
            for _ in range(200):  # until unshare has switched namespaces (bounded: 10 s)
                try:
                    if os.readlink(f"/proc/{h.pid}/ns/net") != own:
                        break
                except OSError:
                    pass
                time.sleep(0.05)
            else:
                raise RuntimeError("rank namespace did not come up")
            _sh("ip", "link", "add", "dev", f"snh{r}", "type", "veth", "peer", "name", f"sne{r}")
            _sh("ip", "link", "set", "dev", f"sne{r}", "netns", str(h.pid))
            _sh("ip", "link", "set", "dev", f"snh{r}", "master", "sn-br")
            _sh("ip", "link", "set", "dev", f"snh{r}", "up")
            # One frame per skb (no GSO super-packets): tbf then shapes frame by frame like a
            # NIC; with GSO, 64 KiB bursts made transfer times erratic (measured: 0.73-0.91).
            _sh("ip", "link", "set", "dev", f"snh{r}", "gso_max_segs", "1")
            _sh("ip", "link", "set", "dev", f"sne{r}", "gso_max_segs", "1", pid=h.pid)
            _sh("ip", "link", "set", "dev", "lo", "up", pid=h.pid)
            _sh("ip", "addr", "add", f"{self.addr(r)}/24", "dev", f"sne{r}", pid=h.pid)
            _sh("ip", "link", "set", "dev", f"sne{r}", "up", pid=h.pid)

    def addr(self, rank: int) -> str:
        return f"{SUBNET}.{rank + 1}"

    def pid(self, rank: int) -> int:
        return self.holders[rank].pid

    def shape(self, rate_bps: float) -> None:
        """Shape both directions of every link to rate_bps (bit/s)."""
        for r in range(self.workers):
            _sh("tc", "qdisc", "add", "dev", f"snh{r}", "root", "tbf", *tbf_args(rate_bps))
            _sh("tc", "qdisc", "add", "dev", f"sne{r}", "root", "tbf", *tbf_args(rate_bps),
                pid=self.pid(r))

    def probe(self, nbytes: int = 64 << 20) -> float:
        """Unshaped TCP throughput (bit/s) from rank 1 to rank 0: the CPU's ceiling."""
        server = subprocess.Popen(
            ["nsenter", f"--net=/proc/{self.pid(0)}/ns/net", "--", sys.executable, "-c", _SINK,
             self.addr(0)], stdout=subprocess.PIPE, text=True, start_new_session=True)
        try:
            port = int(server.stdout.readline())
            _sh(sys.executable, "-c", _SOURCE, self.addr(0), str(port), str(nbytes), pid=self.pid(1))
            line = server.stdout.readline()
            got, seconds = (float(v) for v in line.split())
            return 8 * got / seconds
        finally:
            server.kill()
            server.wait(timeout=10)

    def __exit__(self, *exc) -> None:
        for h in self.holders:
            if h.poll() is None:
                h.kill()
            h.wait(timeout=10)
        subprocess.run(["ip", "link", "del", "dev", "sn-br"], capture_output=True, timeout=20)


_SINK = """
import socket, sys, time
s = socket.socket(); s.settimeout(20); s.bind((sys.argv[1], 0)); s.listen(1)
print(s.getsockname()[1], flush=True)
c, _ = s.accept(); c.settimeout(20); n = 0; t0 = None
while True:
    b = c.recv(1 << 20)
    if not b: break
    t0 = t0 or time.perf_counter(); n += len(b)
print(n, time.perf_counter() - t0, flush=True)
"""
_SOURCE = """
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20)
buf = bytes(1 << 20)
for _ in range(int(sys.argv[3]) >> 20): c.sendall(buf)
c.close()
"""


def hub_main(spec_path: str) -> None:
    """Inside the hub namespace: build the cluster, probe, shape, run the ranks, clean up."""
    folder = Path(spec_path).parent
    spec = json.loads(Path(spec_path).read_text())
    out: dict = {"warnings": []}
    try:
        with Cluster(spec["workers"], spec["timeout_s"] + 60) as cl:
            if spec["workers"] >= 2:
                out["probe_bps"] = cl.probe()
                if out["probe_bps"] < 10 * spec["rate_bps"]:
                    out["warnings"].append(
                        f"CPU-bound: an unshaped transfer reaches only {out['probe_bps'] / 1e6:.0f} "
                        f"Mbit/s, not >> the {spec['rate_bps'] / 1e6:.0f} Mbit/s shaped rate; "
                        "measurements will show the CPU, not the link")
            cl.shape(spec["rate_bps"])
            results = run_job(spec["tasks"], spec["workers"], spec["timeout_s"],
                              master_addr=cl.addr(0),
                              prefix=lambda r: ["nsenter", f"--net=/proc/{cl.pid(r)}/ns/net", "--"],
                              env=lambda r: {"GLOO_SOCKET_IFNAME": f"sne{r}"}, folder=folder)
            out["results"] = merge(results)
    except Exception as err:  # reported to the launching process
        out["error"] = f"{type(err).__name__}: {err}"
    (folder / "hub.json").write_text(json.dumps(out))


def run_emulated(tasks: list[dict], workers: int, rate_bps: float,
                 timeout_s: float = 300.0) -> dict:
    """Run tasks on `workers` ranks over an emulated star shaped to rate_bps (bit/s).

    Returns {"results": merged task results, "probe_bps": unshaped bit/s, "warnings": [...]}.
    Raises RuntimeError when namespaces are unavailable, RunFailed when the run fails.
    """
    ok, why = available()
    if not ok:
        raise RuntimeError(f"emulated cluster unavailable: {why}")
    folder = Path(tempfile.mkdtemp(prefix="simnet-netns-"))
    spec_path = folder / "spec.json"
    spec_path.write_text(json.dumps({"workers": workers, "rate_bps": rate_bps,
                                     "timeout_s": timeout_s, "tasks": tasks}))
    log = open(folder / "hub.log", "w")
    hub = subprocess.Popen(["unshare", "--net", "--", sys.executable, "-m", "simnet.deploy.netns",
                            str(spec_path)], stdout=log, stderr=subprocess.STDOUT,
                           start_new_session=True)
    log.close()
    try:
        hub.wait(timeout=timeout_s + 60)
    except subprocess.TimeoutExpired:
        os.killpg(hub.pid, 9)  # our own hub's session: its namespaces vanish with it
        hub.wait(timeout=10)
        raise RunFailed(f"emulated run did not finish within {timeout_s + 60:.0f} s") from None
    path = folder / "hub.json"
    if not path.exists():
        raise RunFailed(f"emulated run failed:\n{(folder / 'hub.log').read_text()[-3000:]}")
    out = json.loads(path.read_text())
    if "error" in out:
        raise RunFailed(f"emulated run failed: {out['error']}")
    shutil.rmtree(folder, ignore_errors=True)
    return out


if __name__ == "__main__":
    hub_main(sys.argv[1])
