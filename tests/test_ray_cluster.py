"""Ray on a real multi-node cluster, and Ray's bad input.

The cluster is Ray's ``ray.cluster_utils.Cluster``: a head node and a worker
node on this machine, each its own raylet with 1 CPU, started as a user's
cluster would be, outside gan-nas (its workers inherit no
``TF_CPP_MIN_LOG_LEVEL`` and no ``GAN_NAS_CACHE``). A search on it loses the
worker node (SIGKILL of all its processes) while a candidate trains there, and
still finishes with every evaluation journaled once, printing no TensorFlow
line. A cluster that cannot run a candidate, or an address where none answers,
is one ``error:`` line and exit 2, soon, with no run directory left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import test_search
from test_run_faults import one_error
from test_search import env, still_running, write_config

from gan_nas import cli
from gan_nas.errors import ConfigError
from gan_nas.executors import probe_ray_address

ray = pytest.importorskip("ray")

fixture_dir = test_search.fixture_dir  # the module-scoped bars dataset and classifier cache

# TensorFlow's native lines (start-up, grappler) and its Python logger's warnings
TF_LINE = re.compile(r"absl::InitializeLog|oneDNN|cudart|cuInit|[IWE]0000 |WARNING:tensorflow|remapper")


@pytest.fixture(autouse=True)
def _cache(fixture_dir, monkeypatch):
    monkeypatch.setenv("GAN_NAS_CACHE", str(fixture_dir / "cache"))


@contextlib.contextmanager
def _outside_gan_nas() -> Iterator[None]:
    """The environment of a node started outside gan-nas: no GAN_NAS_* and no TF_CPP_* variables."""
    with pytest.MonkeyPatch.context() as mp:
        for k in [k for k in os.environ if k.startswith(("GAN_NAS_", "TF_CPP_"))]:
            mp.delenv(k)
        yield


@pytest.fixture(scope="module")
def cluster():
    """A two-node Ray cluster (head and worker node, 1 CPU each); every process of it ends with the module."""
    from ray.cluster_utils import Cluster

    with _outside_gan_nas():
        c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
        c.add_node(num_cpus=1)
        c.wait_for_nodes()
    nodes = c.list_all_nodes()
    try:
        yield c
    finally:
        nodes += c.list_all_nodes()  # a node a test added
        c.shutdown()
        assert not any(n.any_processes_alive() for n in nodes)


def _search_args(cfgp: Path, run: Path, *sets: str) -> list[str]:
    args = ["search", "--config", str(cfgp), "--run-dir", str(run), "--quiet", "--set", "run.executor=ray"]
    for s in sets:
        args += ["--set", s]
    return args


def _running_tasks(node) -> list[psutil.Process]:
    """The Ray workers of ``node`` that are running a task (Ray names them ray::<function> meanwhile)."""
    raylet = psutil.Process(node.all_processes[ray._private.ray_constants.PROCESS_TYPE_RAYLET][0].process.pid)
    busy = []
    for p in raylet.children(recursive=True):
        try:
            if p.cmdline()[:1] == ["ray::_ray_task"]:
                busy.append(p)
        except psutil.Error:
            pass
    return busy


@pytest.mark.slow
def test_a_search_on_two_nodes_survives_losing_one_mid_candidate(cluster, fixture_dir, tmp_path):
    c = cluster
    worker = next(iter(c.worker_nodes))
    cfgp = write_config(fixture_dir, "cluster", generations=1, survivor=2)  # 2 initial, 2 children, 2 continuations
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "gan_nas.cli",
           *_search_args(cfgp, run, f"run.ray_address={c.address}", "run.workers=2", "run.threads=1")]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=env(fixture_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        killed = []
        while proc.poll() is None and time.monotonic() - t0 < 150:
            if _running_tasks(worker):
                time.sleep(1.5)  # well into the candidate (its worker imports TensorFlow, builds, trains)
                killed = _running_tasks(worker)  # still running one
                if killed:
                    c.remove_node(worker, allow_graceful=False)  # SIGKILL: raylet, agents, workers
                    break
            time.sleep(0.2)
        out, err = proc.communicate(timeout=max(10.0, 170 - (time.monotonic() - t0)))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if worker not in c.worker_nodes:  # the next test's cluster has two nodes again
            with _outside_gan_nas():
                c.add_node(num_cpus=1)
    assert killed, "no candidate ran on the worker node while the search ran: nothing was lost"
    # the node's workers died with it: nothing trains on
    assert not [p.pid for p in psutil.wait_procs(killed, timeout=10)[1] if still_running(p)]
    assert proc.returncode == 0, err
    journal = [json.loads(line) for line in (run / "journal.jsonl").read_text().splitlines()]
    ids = [r["id"] for r in journal]
    assert sorted(ids) == [f"c{i:04d}" for i in range(6)], ids  # nothing lost, nothing journaled twice
    assert all(r["status"] == "ok" for r in journal), [(r["id"], r["status"], r.get("error")) for r in journal]
    state = json.loads((run / "state.json").read_text())
    assert state["done"] and state["hall_of_fame"][0] in ids
    # Ray relays its workers' stderr; a candidate on a node started outside gan-nas prints no TensorFlow
    # line (the search forwards TF_CPP_MIN_LOG_LEVEL and imports TensorFlow quietly), so nothing at all
    assert not [line for line in err.splitlines() if TF_LINE.search(line) or "_ray_task pid=" in line], err
    assert time.monotonic() - t0 < 170


@pytest.mark.slow
@pytest.mark.parametrize("sets, asks", [(["run.threads=2"], "2 CPUs"),
                                        (["run.threads=1", "run.gpus_per_candidate=1"], "1 CPU and 1 GPU")])
def test_a_cluster_without_the_resources_of_a_candidate_is_exit_2(cluster, fixture_dir, tmp_path, capsys,
                                                                    sets, asks):
    c = cluster
    cfgp = write_config(fixture_dir, "small", generations=1)
    run = tmp_path / "run"
    t0 = time.monotonic()
    code = cli.main(_search_args(cfgp, run, f"run.ray_address={c.address}", "run.workers=2", *sets))
    err = capsys.readouterr().err
    one_error(code, err, f"no live node of the Ray cluster at {c.address} has the {asks} that a candidate asks for",
              "Lower run.threads or run.gpus_per_candidate")
    assert re.search(r"its \d live nodes? ha(s|ve): 1 CPU, 0 GPU", err), err
    assert time.monotonic() - t0 < 60 and not run.exists() and not ray.is_initialized()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_ray_address_is_exit_2_at_once(fixture_dir, tmp_path, capsys):
    cfgp = write_config(fixture_dir, "unreachable", generations=1)
    run = tmp_path / "run"
    address = f"127.0.0.1:{_closed_port()}"
    t0 = time.monotonic()
    code = cli.main(_search_args(cfgp, run, f"run.ray_address={address}"))
    one_error(code, capsys.readouterr().err, f"run.ray_address='{address}': no Ray cluster answers there",
              "Connection refused")
    assert time.monotonic() - t0 < 30 and not run.exists() and not ray.is_initialized()


def test_an_address_that_never_answers_gives_up_after_the_probe_timeout():
    with socket.socket() as s:  # accepts connections (the kernel does) and never says a word
        s.bind(("0.0.0.0", 0))
        s.listen()
        address = f"127.0.0.1:{s.getsockname()[1]}"
        t0 = time.monotonic()
        with pytest.raises(ConfigError, match=rf"run.ray_address='{address}': no Ray cluster answers there "
                                              r"\(.*no answer within 1 s\)"):
            probe_ray_address(address, timeout=1.0)
        assert time.monotonic() - t0 < 10


def test_a_bad_ray_address_is_a_config_error():
    with pytest.raises(ConfigError, match="not the address of a Ray cluster"):
        probe_ray_address("no-port-here")
    with pytest.raises(ConfigError, match=r"run.ray_address='ray://127.0.0.1:\d+': nothing answers there"):
        probe_ray_address(f"ray://127.0.0.1:{_closed_port()}", timeout=2.0)
