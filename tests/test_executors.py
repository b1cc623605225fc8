"""Executors: every task's result exactly once; exceptions and dead workers become failed results."""

from __future__ import annotations

import os
import sys
import time

import pytest

from gan_nas.config import RunConfig
from gan_nas.errors import ConfigError
from gan_nas.executors import ProcessExecutor, RayExecutor, SerialExecutor, make_executor

sys.path.insert(0, os.path.dirname(__file__))  # spawn children inherit sys.path; Ray gets PYTHONPATH
import _toy_tasks  # noqa: E402


def _collect(ex, fn, tasks):
    out = list(ex.map_unordered(fn, tasks))
    indices = [i for i, _ in out]
    assert sorted(indices) == list(range(len(tasks))), indices
    return dict(out)


def _kill_tasks(tmp_path):
    """Task 1 kills its worker once, task 3 always; the others are plain."""
    return [{"x": 0}, {"x": 1, "marker": str(tmp_path / "m1")}, {"x": 2}, {"x": 3, "always": True, "count": str(tmp_path / "c3")}, {"x": 4}]


def _check_kill_results(res, tmp_path, max_retries):
    assert res[1]["status"] == "ok" and res[1]["y"] == 1  # retried after the first attempt died
    assert res[3]["status"] == "failed" and res[3]["error"].startswith("worker died"), res[3]
    assert all(res[i] == {**res[i], "status": "ok", "y": i * i} for i in (0, 2, 4))
    assert len((tmp_path / "c3").read_text().splitlines()) == 1 + max_retries


def test_serial_maps_and_fails_softly():
    calls = []
    ex = make_executor(RunConfig(executor="serial"), init=lambda: calls.append(1))
    assert isinstance(ex, SerialExecutor) and calls == [1]
    with ex:
        res = _collect(ex, _toy_tasks.square, [{"x": 2}, {"x": 3, "raise": True}, {"x": 4}])
    assert res[0]["y"] == 4 and res[2]["y"] == 16
    assert res[1]["status"] == "failed" and res[1]["error"] == "ValueError: bad x 3"
    assert "Traceback" in res[1]["traceback"]


def test_serial_does_not_swallow_keyboard_interrupt():
    def interrupt(task):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        list(SerialExecutor().map_unordered(interrupt, [{}]))


def test_make_executor_threads_default():
    ex = make_executor(RunConfig(executor="process", workers=2, threads=0))
    assert isinstance(ex, ProcessExecutor) and ex.threads == max(1, (os.cpu_count() or 1) // 2)
    ex.close()


def test_process_pool_maps_in_long_lived_workers():
    with ProcessExecutor(workers=2, threads=3, max_retries=1) as ex:
        tasks = [{"x": i} for i in range(6)] + [{"x": 6, "raise": True}]
        res = _collect(ex, _toy_tasks.square, tasks)
        assert [res[i]["y"] for i in range(6)] == [i * i for i in range(6)]
        assert res[6]["status"] == "failed" and res[6]["error"] == "ValueError: bad x 6"
        assert {r["threads"] for r in res.values() if "threads" in r} == {"3"}  # set before any import
        pids = {r["pid"] for r in res.values() if "pid" in r}
        assert 1 <= len(pids) <= 2 and os.getpid() not in pids
        again = _collect(ex, _toy_tasks.square, [{"x": 7}])  # the same workers serve the next map
        assert again[0]["pid"] in pids


def test_process_pool_survives_killed_workers(tmp_path):
    with ProcessExecutor(workers=2, threads=1, max_retries=2) as ex:
        res = _collect(ex, _toy_tasks.kill_worker, _kill_tasks(tmp_path))
        assert "SIGKILL" in res[3]["error"]
        _check_kill_results(res, tmp_path, 2)
        assert _collect(ex, _toy_tasks.square, [{"x": 5}])[0]["y"] == 25  # the pool still works


def _check_idle_gets_more_work(ex):
    """A worker idle while task 0 (slow) still runs is given one extra task, which comes back
    under the next index; the map waits for it."""
    calls = []

    def idle(running):
        calls.append(running)
        return {"x": 5} if len(calls) == 1 else None

    out = list(ex.map_unordered(_toy_tasks.square, [{"x": 3, "sleep": 3.0}, {"x": 4}], idle=idle))
    assert sorted(i for i, _ in out) == [0, 1, 2]
    res = dict(out)
    assert res[2]["y"] == 25 and res[0]["y"] == 9
    assert [i for i, _ in calls[0]] == [0] and 0.0 <= calls[0][0][1] < 3.0  # the slow task, seconds running
    assert out[-1][0] == 0  # task 0 was still running when the extra one finished


def test_process_pool_gives_an_idle_worker_more_work():
    with ProcessExecutor(workers=2, threads=1, max_retries=0) as ex:
        _collect(ex, _toy_tasks.square, [{"x": 0}, {"x": 0}])  # both workers up, so the timing is the tasks'
        _check_idle_gets_more_work(ex)


def test_serial_never_has_an_idle_worker():
    calls = []
    out = list(SerialExecutor().map_unordered(_toy_tasks.square, [{"x": 2}, {"x": 3}],
                                              idle=lambda running: calls.append(running) or {"x": 9}))
    assert [i for i, _ in out] == [0, 1] and calls == []


def test_process_pool_early_exit_abandons_running_tasks():
    with ProcessExecutor(workers=2, threads=1, max_retries=0) as ex:
        it = ex.map_unordered(_toy_tasks.square, [{"x": i} for i in range(4)])
        next(it)
        it.close()  # workers with a stale task are stopped; the next map starts clean
        res = _collect(ex, _toy_tasks.square, [{"x": 9}, {"x": 10}])
        assert res[0]["y"] == 81 and res[1]["y"] == 100


@pytest.fixture(scope="module")
def ray_executor():
    """A RayExecutor that starts (and on close stops) its own local Ray with 2 CPUs, once per module."""
    ray = pytest.importorskip("ray")
    tests_dir = os.path.dirname(os.path.abspath(__file__))
    with pytest.MonkeyPatch.context() as mp:  # Ray's workers inherit the environment at ray.init
        mp.setenv("PYTHONPATH", os.pathsep.join(p for p in (tests_dir, os.environ.get("PYTHONPATH")) if p))
        ex = make_executor(RunConfig(executor="ray", workers=2, threads=1, max_retries=2))
    assert isinstance(ex, RayExecutor) and ray.is_initialized()
    yield ex
    ex.close()
    assert not ray.is_initialized()


@pytest.mark.slow
def test_ray_maps_and_fails_softly(ray_executor):
    res = _collect(ray_executor, _toy_tasks.square, [{"x": 2}, {"x": 3, "raise": True}, {"x": 4}])
    assert res[0]["y"] == 4 and res[2]["y"] == 16 and res[0]["threads"] == "1"
    assert res[1]["status"] == "failed" and res[1]["error"] == "ValueError: bad x 3"


@pytest.mark.slow
def test_ray_tasks_get_the_drivers_gan_nas_variables_and_tf_log_level(ray_executor, monkeypatch):
    monkeypatch.setenv("GAN_NAS_PROBE", "set-after-ray-started")  # Ray's workers cannot have inherited these
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    monkeypatch.setenv("TF_CPP_VMODULE", "remapper=0")
    names = ["GAN_NAS_PROBE", "TF_CPP_MIN_LOG_LEVEL", "TF_CPP_VMODULE"]
    res = _collect(ray_executor, _toy_tasks.env_var, [{"name": n} for n in names])
    assert [res[i]["value"] for i in range(3)] == ["set-after-ray-started", "2", "remapper=0"]


@pytest.mark.slow
def test_ray_gives_an_idle_worker_more_work(ray_executor):
    # both Ray workers up, TensorFlow imported (once per worker), so the timing is the tasks'
    _collect(ray_executor, _toy_tasks.square, [{"x": 0, "sleep": 1.0}, {"x": 0, "sleep": 1.0}])
    _check_idle_gets_more_work(ray_executor)


@pytest.mark.slow
def test_ray_stops_when_no_live_node_fits_a_task(ray_executor, monkeypatch):
    """Nodes died mid-search and those left are too small: after ``no_node_grace`` seconds the map
    raises ConfigError (exit 2) and cancels what it submitted, instead of waiting forever."""
    monkeypatch.setattr(ray_executor, "_no_node_fits", lambda: "no live node of the cluster has 1 CPU")
    monkeypatch.setattr(ray_executor, "no_node_grace", 0.0)
    t0 = time.monotonic()
    with pytest.raises(ConfigError, match=r"has 1 CPU \(none for 0 s, mid-search: what finished is kept"):
        list(ray_executor.map_unordered(_toy_tasks.square, [{"x": 1, "sleep": 60.0}]))
    assert time.monotonic() - t0 < 20  # one look at the nodes, every 5 s
    monkeypatch.undo()
    assert _collect(ray_executor, _toy_tasks.square, [{"x": 3}])[0]["y"] == 9  # the executor still works


@pytest.mark.slow
def test_ray_survives_killed_workers(ray_executor, tmp_path):
    res = _collect(ray_executor, _toy_tasks.kill_worker, _kill_tasks(tmp_path))
    _check_kill_results(res, tmp_path, 2)


def test_ray_missing_is_a_config_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ConfigError, match=r"needs Ray: pip install 'gan-nas\[ray\]'"):
        make_executor(RunConfig(executor="ray"))


def test_pool_gpus_come_from_the_visible_devices(monkeypatch):
    from gan_nas.executors import pool_gpus

    one = RunConfig(executor="process", workers=2, gpus_per_candidate=1)
    assert pool_gpus(one, visible=["0", "1", "2"]) == ["0", "1", "2"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3, 5")
    assert pool_gpus(one) == ["3", "5"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")  # CUDA's way to hide every GPU
    with pytest.raises(ConfigError, match="shows TensorFlow no GPU"):
        pool_gpus(one)
    with pytest.raises(ConfigError, match="one whole GPU"):
        pool_gpus(RunConfig(executor="process", gpus_per_candidate=0.5), visible=["0"])


@pytest.mark.slow
def test_process_pool_pins_each_worker_to_its_gpu():
    """Worker slot i sees only GPU gpus[i % n] (as CUDA_VISIBLE_DEVICES), also after a restart."""
    ex = ProcessExecutor(workers=3, threads=1, max_retries=1, gpus=["4", "7"])
    try:
        assert [ex.gpu_of(s) for s in range(3)] == ["4", "7", "4"]
        tasks = [{"name": "CUDA_VISIBLE_DEVICES"} for _ in range(3)]  # one per worker, handed out at once
        seen = sorted(r["value"] for _, r in ex.map_unordered(_toy_tasks.env_var, tasks))
        assert seen == ["4", "4", "7"]
    finally:
        ex.close()
