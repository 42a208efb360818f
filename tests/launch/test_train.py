"""multiverse train on real local Ray with the tiny-test model: config errors, outputs, exact resume, faults, plots."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from multiverse.launch.config import ConfigError, RunConfig, _walk, load_config

ROOT = Path(__file__).resolve().parents[2]
GAMES_ONLY = "envs.train={games/Catch-v0: 1}"


def smoke(root: Path, *overrides: str) -> RunConfig:
    return load_config("smoke", [f"run.root={root}", *overrides])


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def ray_session() -> str:
    """One embedded Ray for the in-process runs of this module (each run starts and stops its own workers), with
    its dashboard, so that test_embedded_ray_listens_on_loopback_only sees every server a run can start."""
    import ray

    from multiverse.launch.cluster import init_ray

    _, where = init_ray(None, dashboard=True, num_cpus=4, needed_cpus=4)
    yield where
    ray.shutdown()


#: tests that read the 4-iteration run, asked to share a pytest-xdist worker (launch/test.sh runs --dist loadgroup)
FOUR_ITERATIONS = pytest.mark.xdist_group(name="four_iterations")  # name= : a positional name is ignored


@pytest.fixture(scope="module")
def four_iterations(ray_session, tmp_path_factory) -> Path:
    """The smoke config run for 4 iterations without interruption, made once per test session.

    The xdist group alone did not keep it to one worker in CI (it was made twice: pytest 9.2 ignores how
    xdist 3.8 marks a group, hence pyproject's pytest < 9.2), so under pytest-xdist the run also goes in the
    session's shared temp folder behind a file lock: the first worker makes it, another one waits and reads it."""
    from filelock import FileLock

    from multiverse.launch.train import train

    if not os.environ.get("PYTEST_XDIST_WORKER"):  # no xdist: this session's own folder
        return train(smoke(tmp_path_factory.mktemp("runs"), "run.iterations=4", "run.name=straight"),
                     config_name="smoke")
    shared = tmp_path_factory.getbasetemp().parent  # pytest-N/, the same for every worker of this session
    with FileLock(str(shared / "four_iterations.lock")):
        done = shared / "four_iterations.done"
        if not done.exists():
            run = train(smoke(shared / "four_iterations", "run.iterations=4", "run.name=straight"),
                        config_name="smoke")
            done.write_text(str(run))
        return Path(done.read_text())


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["rollout.wrkers=2"], "unknown field 'rollout.wrkers'; did you mean 'rollout.workers'?"),
        (["rollout.workers=0"], "rollout.workers: Input should be greater than or equal to 1"),
        (["algorithm.name=sarsa"], "algorithm.name: Input should be 'grpo' or 'ppo'"),
        (["envs.train={games/Snak-v0: 1}"], "envs.train: unknown env 'games/Snak-v0'; did you mean 'games/Snake-v0'?"),
        (["envs.heldout_ids=[web/Nope-v0]"], "envs.heldout_ids: unknown env 'web/Nope-v0'"),
        (["envs.params={games/Catch-v0: {widht: 5}}"], "unknown parameter 'widht'; did you mean 'width'?"),
        (["run.iterations"], "an override must be KEY=VALUE"),
        (["algorithm.name=ppo", "algorithm.value_head=false"], "algorithm.name=ppo needs a value head"),
    ],
)
def test_bad_config_names_the_field(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config("smoke", overrides)
    assert message in str(err.value)


def test_bad_config_on_the_command_line_starts_nothing(multiverse_cli: str, tmp_path: Path) -> None:
    out = subprocess.run([multiverse_cli, "train", "--config", "smoke", f"run.root={tmp_path}", "model.lr=3"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "unknown field 'model.lr'" in out.stderr
    assert list(tmp_path.iterdir()) == []  # no run dir, no Ray


def test_a_prompt_too_long_for_a_web_page_stops_the_run_with_one_line_and_leaves_no_run_dir(
        ray_session, tmp_path: Path, capsys) -> None:
    """A page's text is only known once Chromium renders it: the checks before the start pass (the prompt around an
    empty page fits), the worker's first step does not. One line, and the run dir that logged nothing is removed."""
    from multiverse.launch.cli import main

    code = main(["train", "--config", "smoke", f"run.root={tmp_path}", "model.max_prompt_tokens=120",
                 "rollout.workers=1", "envs.train={web/ClickButton-v0: 1}", "envs.params={}", "envs.heldout_ids=[]"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    [line] = [line for line in err.splitlines() if "error:" in line]
    assert line.startswith("multiverse train: error: model.max_prompt_tokens: the prompt needs "), line
    assert "but max_prompt_tokens is 120. Raise max_prompt_tokens" in line
    assert list(tmp_path.iterdir()) == []


def test_help_documents_every_field(multiverse_cli: str) -> None:
    out = subprocess.run([multiverse_cli, "train", "--help"], capture_output=True, text=True, timeout=120).stdout
    for key, _, field in _walk(RunConfig):
        assert key in out, key
        assert field.description, f"{key} has no doc"


def test_shipped_configs_are_valid() -> None:
    for name in ("smoke", "local", "cluster"):
        config = load_config(ROOT / "launch" / "configs" / f"{name}.yaml")
        assert len(config.env_ids()) >= 2, name
    local = load_config("local")
    assert local.model.name == "default" and any(i.startswith("web/") for i in local.env_ids())
    assert load_config("cluster").ray.learner == "auto" and "/" in load_config("cluster").model.name


# --------------------------------------------------------------------------- the embedded Ray


def test_embedded_ray_listens_on_loopback_only_and_serves_its_dashboard(ray_session: str) -> None:
    """Every socket the embedded Ray's processes listen on (GCS, raylet, object manager, worker gRPC, the dashboard
    and its agents, metrics), TCP or UDP, is bound to 127.0.0.1 or ::1; and ray.dashboard=true shows a dashboard URL
    on 127.0.0.1 that answers."""
    import ipaddress
    import urllib.error
    import urllib.request

    import psutil
    import ray

    [url] = [w.removeprefix("dashboard ") for w in ray_session.rstrip(")").split(", ") if w.startswith("dashboard ")]
    assert url.startswith("http://127.0.0.1:"), ray_session
    try:
        with urllib.request.urlopen(f"{url}/api/version", timeout=60) as reply:
            assert reply.status == 200
    except urllib.error.HTTPError as error:
        assert error.code == 401, error  # it answers; token authentication wants the token

    @ray.remote(num_cpus=0)
    class Probe:  # a worker process with its own gRPC server
        def pid(self) -> int:
            return os.getpid()

    probe = Probe.remote()
    ray.get(probe.pid.remote(), timeout=120)
    me = psutil.Process()
    listening, names = [], set()
    for proc in [me, *me.children(recursive=True)]:
        try:
            sockets = proc.net_connections(kind="inet")
            name = " ".join(proc.cmdline())
        except psutil.Error:  # a process that just exited
            continue
        for c in sockets:
            if c.status == psutil.CONN_LISTEN or c.type == socket.SOCK_DGRAM:
                listening.append((c.laddr.ip, c.laddr.port, name[:100]))
                names.add(name)
    ray.kill(probe)
    for part in ("gcs_server", "raylet", "DashboardAgent", "RuntimeEnvAgent", "dashboard.py", "Probe"):
        assert any(part in n for n in names), (part, listening)

    def loopback(ip: str) -> bool:
        address = ipaddress.ip_address(ip.split("%")[0])
        mapped = getattr(address, "ipv4_mapped", None)
        return (mapped or address).is_loopback

    assert [s for s in listening if not loopback(s[0])] == []


# --------------------------------------------------------------------------- outputs and exact resume


@FOUR_ITERATIONS
def test_run_dir_holds_config_metrics_tensorboard_evals_and_checkpoints(four_iterations: Path) -> None:
    run = four_iterations
    assert load_config(run / "config.yaml").run.iterations == 4  # the resolved config reloads
    metrics = rows(run / "metrics.csv")
    assert [int(r["iteration"]) for r in metrics] == [1, 2, 3, 4]
    for key in ("train/success/games/Catch-v0", "train/return/web/ClickButton-v0", "update/loss", "update/entropy",
                "update/approx_kl", "adv/adv_var_with_baseline", "adv/adv_var_no_baseline", "perf/env_steps_per_s",
                "perf/tokens_per_s", "perf/iteration_s", "faults/episodes_lost", "sampler/prob/games/Catch-v0",
                "adr/entropy/games/Catch-v0"):
        assert metrics[-1][key] != "", key
    assert all(int(r["perf/episodes"]) == 8 and int(r["faults/episodes_lost"]) == 0 for r in metrics)
    evals = rows(run / "eval.csv")
    assert sorted({int(r["iteration"]) for r in evals}) == [0, 2, 4]  # before, every 2, after the last
    assert {(r["env"], r["role"]) for r in evals} == {
        ("games/Catch-v0", "train"), ("web/ClickButton-v0", "train"), ("games/Maze-v0", "held-out")}
    assert "| games/Maze-v0 | held-out | heldout |" in (run / "evals" / "iter_000004.md").read_text()
    assert list((run / "tb").glob("events.out.tfevents.*"))
    assert [p.name for p in (run / "checkpoints").iterdir()] and len(list((run / "checkpoints").glob("iter_*"))) == 3
    state = json.loads((run / "checkpoints" / "iter_000004" / "trainer.json").read_text())
    assert state["iteration"] == 4 and state["learner_step"] >= 4 and state["adr"]["games/Catch-v0"]["ranges"]


@FOUR_ITERATIONS
def test_two_plus_resumed_two_equals_four(four_iterations: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from multiverse.launch.train import train

    # one rollout worker where the straight run had two: a task's episodes do not depend on which worker runs it
    # (or how many there are), so this checks that too, and starts one worker process and Chromium less per run
    first = train(smoke(tmp_path, "run.iterations=2", "run.name=split", "rollout.workers=1"), config_name="smoke")
    resumed = train(load_config(first / "config.yaml", ["run.iterations=4"]), resume=first)
    assert resumed == first
    a, b = rows(four_iterations / "metrics.csv"), rows(first / "metrics.csv")
    assert [int(r["iteration"]) for r in b] == [1, 2, 3, 4]
    for ra, rb in zip(a, b):
        for key in ra:
            if key.startswith(("train/", "update/", "adv/", "sampler/", "adr/")) and ra[key]:
                assert float(rb[key]) == pytest.approx(float(ra[key]), rel=1e-5, abs=1e-6), (ra["iteration"], key)
    wa = load_file(str(four_iterations / "checkpoints" / "iter_000004" / "learner" / "weights.safetensors"))
    wb = load_file(str(first / "checkpoints" / "iter_000004" / "learner" / "weights.safetensors"))
    assert wa.keys() == wb.keys()
    for k in wa:
        assert (wa[k] - wb[k]).abs().max() <= 1e-5, k
    sa = json.loads((four_iterations / "checkpoints" / "iter_000004" / "trainer.json").read_text())
    sb = json.loads((first / "checkpoints" / "iter_000004" / "trainer.json").read_text())
    assert sa["rng"] == sb["rng"] and sa["np_rng"] == sb["np_rng"] and sa["adr"] == sb["adr"]
    for k in ("fast", "slow"):
        assert sa["sampler"][k] == pytest.approx(sb["sampler"][k])


@FOUR_ITERATIONS
def test_plot_writes_pngs(four_iterations: Path, multiverse_cli: str) -> None:
    out = subprocess.run([multiverse_cli, "plot", str(four_iterations)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    names = {p.name for p in (four_iterations / "plots").glob("*.png")}
    assert {"success.png", "return.png", "training.png", "throughput.png", "env_games_Catch-v0.png",
            "env_games_Maze-v0.png"} <= names
    for p in (four_iterations / "plots").glob("*.png"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000


def test_workers_act_with_the_weights_of_the_latest_update(ray_session) -> None:
    """... and with rollout.max_restarts=0, the death of the only worker stops the pool with one line."""
    import ray

    from multiverse.agents.rollout import EpisodeSpec, Task, compute_advantages, to_samples
    from multiverse.launch.workers import WorkerPool, WorkerPoolError, make_learner

    from fault_workers import ProbeWorker

    # bare actions: described ones put all of the tiny model's mass on one action, and the update below would
    # then change nothing (agent_helpers.BARE)
    config = load_config("smoke", [GAMES_ONLY, "model.action_text=action"]).trainer()
    learner, _ = make_learner(config.learner, config.loss, placement="driver", gpus=0, threads=None)
    pool = WorkerPool(1, config.learner, envs_per_id=2, num_cpus=1, torch_threads=1, max_restarts=0,
                      worker_cls=ProbeWorker)
    try:
        task = Task(0, [EpisodeSpec("games/Catch-v0", 0, {"params": {"width": 5, "height": 6, "balls": 1}})] * 2,
                    seed=0, max_steps=3)
        for version in range(2):
            pool.sync(learner)
            [result], stats = pool.run([task])
            assert result is not None and stats["episodes_lost"] == 0
            expected = float(sum(w.abs().sum() for w in learner.weights().values()))
            [(loaded, checksum)] = ray.get([h.weights_version.remote() for h in pool.handles])
            assert loaded == version and checksum == pytest.approx(expected, rel=1e-6)
            # a real update on these episodes (advantage 1 everywhere), so the next version differs
            advs, targets, _ = compute_advantages(result.episodes, normalize=False)
            learner.update(to_samples(result.episodes, [a + 1.0 for a in advs], targets), epochs=1, minibatch=8,
                           seed=0)
            assert float(sum(w.abs().sum() for w in learner.weights().values())) != pytest.approx(expected, rel=1e-9)
        ray.kill(pool.handles[0], no_restart=True)
        with pytest.raises(WorkerPoolError) as err:
            pool.run([task])
        assert str(err.value) == ("rollout worker 0 died; not replaced (rollout.max_restarts=0, 0 replaced so far) and "
                                  "no rollout worker is left; raise rollout.max_restarts (-1: replace every dead "
                                  "worker), or look for why workers die (memory?)")
    finally:
        pool.close()


class Capture:
    """The loop's RunLog, keeping what it is given."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.evals: list[list[dict]] = []
        self.episodes: list = []
        self.state: dict = {}

    def iteration(self, iteration: int, row: dict) -> None:
        self.rows.append(dict(row))

    def evaluation(self, iteration: int, rows: list) -> None:
        self.evals.append([dict(r) for r in rows])

    def record(self, kind: str, episodes: list, iteration: int, learner_step: int, adr=None) -> None:
        self.episodes += [(kind, e) for e in episodes]

    def checkpoint(self, iteration: int, learner, state: dict) -> None:
        self.state = dict(state)


def test_the_in_process_and_the_ray_rollout_give_the_same_episodes_and_the_same_update(ray_session) -> None:
    """One iteration of the one loop on a game and a web task (plus the evaluation after it), rolled out here and on
    two Ray workers from the same seed: the same episodes step for step, the same metrics, the same weights."""
    from multiverse.agents.loop import TrainerState, train_loop
    from multiverse.agents.rollout import InProcessRollout
    from multiverse.agents.update import LocalLearner
    from multiverse.launch.workers import WorkerPool

    config = load_config("smoke", ["run.iterations=1", "run.eval_before=false", "run.record_every=1",
                                   "run.record_eval=true", "envs.heldout_ids=[]"]).trainer()
    per_worker = config.rollout.envs_per_worker

    def run(make_rollout) -> tuple[Capture, dict]:
        learner, log = LocalLearner(config.learner, config.loss), Capture()
        rollout = make_rollout(learner)
        try:
            rollout.sync(learner)
            train_loop(config, learner, rollout, log, TrainerState.new(config))
        finally:
            rollout.close()
        return log, learner.weights()

    here, w_here = run(lambda learner: InProcessRollout(learner.policy, per_worker))
    there, w_there = run(lambda learner: WorkerPool(2, config.learner, envs_per_id=per_worker, num_cpus=1,
                                                    torch_threads=1, max_restarts=0))

    def steps(ep) -> list:
        return [(s.observation, tuple(s.legal_actions), s.action, round(s.logp, 5), s.reward) for s in ep.steps]

    assert [k for k, _ in here.episodes] == ["train"] * 8 + ["eval"] * 4  # 4 groups of 2; 2 env ids x 2
    assert {e.env_id for _, e in here.episodes} == {"games/Catch-v0", "web/ClickButton-v0"}
    assert [(k, e.env_id, e.seed, e.options, e.success) for k, e in here.episodes] == [
        (k, e.env_id, e.seed, e.options, e.success) for k, e in there.episodes]
    assert [steps(e) for _, e in here.episodes] == [steps(e) for _, e in there.episodes]
    [a], [b] = here.rows, there.rows
    assert a["perf/samples"] == b["perf/samples"] > 0
    for key in a:
        if key.startswith(("train/", "update/", "adv/", "sampler/", "adr/")):
            assert b[key] == pytest.approx(a[key], rel=1e-6, abs=1e-7, nan_ok=True), key
    assert here.evals == there.evals
    assert w_here.keys() == w_there.keys() and all(torch_equal(w_here[k], w_there[k]) for k in w_here)
    assert here.state["rng"] == there.state["rng"] and here.state["adr"] == there.state["adr"]


def torch_equal(a, b) -> bool:
    return bool((a - b).abs().max() <= 1e-6)


# --------------------------------------------------------------------------- faults


def test_killed_worker_and_killed_chromium_cost_only_their_episodes(ray_session, tmp_path: Path, capsys) -> None:
    """... and a worker that dies after rollout.max_restarts replacements is dropped: the run goes on without it."""
    from multiverse.launch.train import train

    from fault_workers import faulty_worker

    # weights version v is iteration v + 1's: Chromium dies in iteration 2, worker 0 is SIGKILLed in iteration 3 and
    # worker 1 ended through ray.kill in iteration 4, each while its task runs
    worker = faulty_worker(tmp_path / "faults", chromium_from=1, sigkill=(0, 2), ray_kill=(1, 3))
    config = smoke(tmp_path, "run.iterations=5", "run.eval_every=0", "run.checkpoint_every=0",
                   "rollout.max_restarts=1", "envs.train={web/ClickButton-v0: 1, games/Catch-v0: 1}",
                   "envs.curriculum=none", "envs.heldout_ids=[]")
    run = train(config, worker_cls=worker)
    m = {int(r["iteration"]): r for r in rows(run / "metrics.csv")}
    assert sorted(m) == [1, 2, 3, 4, 5]
    # iteration 2: Chromium killed mid-episode -> those episodes end with infra_error and are not trained on
    assert int(m[2]["faults/infra_errors"]) >= 1 and int(m[2]["faults/episodes_lost"]) == 0
    assert int(m[2]["perf/episodes"]) == 8 and m[2]["update/loss"] != ""
    # iteration 3: a worker died mid-iteration -> its task's episodes lost and counted, the others' kept
    lost, kept = int(m[3]["faults/episodes_lost"]), int(m[3]["perf/episodes"])
    assert lost == 2 and kept == 6, (lost, kept)  # a task is one group of 2 episodes in smoke
    assert int(m[3]["faults/workers_restarted"]) == 1 and m[3]["update/loss"] != ""
    # iteration 4: the same through ray.kill of the other worker, past rollout.max_restarts=1: not replaced
    lost, kept = int(m[4]["faults/episodes_lost"]), int(m[4]["perf/episodes"])
    assert lost == 2 and kept == 6, (lost, kept)
    assert int(m[4]["faults/workers_restarted"]) == 0 and m[4]["update/loss"] != ""
    assert ("rollout worker 1 died; not replaced (rollout.max_restarts=1, 1 replaced so far); going on with 1 workers"
            in capsys.readouterr().err)
    # iteration 5: the one worker left (worker 0's replacement, never armed) does every task, nothing lost
    assert int(m[5]["perf/episodes"]) == 8 and int(m[5]["faults/episodes_lost"]) == 0 and m[5]["update/loss"] != ""


def test_crash_mid_checkpoint_keeps_the_previous_one_and_resume_works(ray_session, multiverse_cli: str,
                                                                       tmp_path: Path) -> None:
    from multiverse.agents.learner import Learner
    from multiverse.launch.train import train

    env = dict(os.environ, MULTIVERSE_FAULT="kill-in-checkpoint:2")
    # Its own session, so that what the killed trainer leaves of its embedded Ray can be ended by group id.
    proc = subprocess.Popen([multiverse_cli, "train", "--config", "smoke", f"run.root={tmp_path}", "run.name=crash",
                             "run.iterations=3", "rollout.workers=1", "run.eval_every=0", GAMES_ONLY,
                             "envs.heldout_ids=[]", "algorithm.name=ppo", "ray.learner=actor",
                             "ray.learner_gpus=0"],
                            stdout=open(tmp_path / "out.log", "w"), stderr=subprocess.STDOUT,
                            env=env, start_new_session=True)
    try:
        proc.wait(timeout=300)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert proc.returncode == -signal.SIGKILL, (tmp_path / "out.log").read_text()
    run = tmp_path / "crash"
    ckpts = run / "checkpoints"
    assert sorted(p.name for p in ckpts.glob("iter_*")) == ["iter_000001"]
    assert list(ckpts.glob(".iter_000002.tmp-*"))  # the interrupted write, never renamed into place
    assert Learner.from_checkpoint(ckpts / "iter_000001" / "learner").step >= 1
    train(load_config(run / "config.yaml"), resume=run)  # PPO with a value head, the learner in an actor
    metrics = rows(run / "metrics.csv")
    assert [int(r["iteration"]) for r in metrics] == [1, 2, 3] and metrics[-1]["update/value_loss"] != ""
    assert sorted(p.name for p in ckpts.glob("iter_*")) == ["iter_000001", "iter_000002", "iter_000003"]
    assert not list(ckpts.glob(".iter_*"))


# --------------------------------------------------------------------------- damaged checkpoints


def copy_run(run: Path, tmp_path: Path) -> Path:
    """A copy of a fixture's run dir, to damage (the fixture is shared)."""
    import shutil

    return Path(shutil.copytree(run, tmp_path / run.name))


def truncate(file: Path) -> int:
    size = file.stat().st_size
    file.write_bytes(file.read_bytes()[:size // 2])
    return size


@FOUR_ITERATIONS
def test_resume_skips_damaged_checkpoints_and_resumes_exactly_from_an_intact_older_one(
        four_iterations: Path, tmp_path: Path, capsys) -> None:
    from multiverse.launch.train import train

    run = copy_run(four_iterations, tmp_path)
    ckpts = run / "checkpoints"
    recorded = truncate(ckpts / "iter_000004" / "learner" / "weights.safetensors")  # checked against the manifest
    for old in ("iter_000003", "iter_000002"):  # as written before checkpoints had a manifest: what parses is checked
        (ckpts / old / "manifest.json").unlink(missing_ok=True)  # (missing_ok: the test also runs on older code)
    (ckpts / "iter_000003" / "trainer.json").write_text('{"iteration": 3, "rng": [3, [1, 2')
    capsys.readouterr()
    # one rollout worker where the straight run had two (see test_two_plus_resumed_two_equals_four)
    train(load_config(run / "config.yaml", ["run.iterations=3", "rollout.workers=1"]), resume=run)
    out = capsys.readouterr().out
    [line] = [line for line in out.splitlines() if line.startswith("resume:")]
    assert line.startswith(
        f"resume: skipped checkpoints/iter_000004 (learner/weights.safetensors is {recorded // 2} bytes, {recorded} "
        f"recorded: truncated), checkpoints/iter_000003 (trainer.json is not valid JSON: "), line
    assert "; resuming from iter_000002; later checkpoints set aside in checkpoints/discarded/" in line, line
    assert "Traceback" not in out
    # the run reads as one: iteration 3 as in the straight run, the CSVs and evaluations cut back to iteration 2
    straight, resumed = rows(four_iterations / "metrics.csv"), rows(run / "metrics.csv")
    assert [int(r["iteration"]) for r in resumed] == [1, 2, 3]
    for key, value in straight[2].items():
        if key.startswith(("train/", "update/", "adv/", "sampler/", "adr/")) and value:
            assert float(resumed[2][key]) == pytest.approx(float(value), rel=1e-5, abs=1e-6), key
    assert sorted({int(r["iteration"]) for r in rows(run / "eval.csv")}) == [0, 2, 3]
    assert not (run / "evals" / "iter_000004.md").exists()
    # the skipped ones are set aside (a later --resume must not take the abandoned iteration 4), not deleted
    assert sorted(p.name for p in ckpts.glob("iter_*")) == ["iter_000002", "iter_000003"]
    assert (ckpts / "iter_000003" / "manifest.json").is_file()
    assert sorted(p.name for p in ckpts.glob("discarded/*/iter_*")) == ["iter_000003", "iter_000004"]


@FOUR_ITERATIONS
def test_resume_checkpoint_picks_one_and_bad_picks_are_one_line(four_iterations: Path, tmp_path: Path,
                                                                  ray_session, capsys) -> None:
    from multiverse.launch.cli import main

    run = copy_run(four_iterations, tmp_path)
    ckpts = run / "checkpoints"
    before = {p: p.read_bytes() for p in (run / "metrics.csv", run / "eval.csv", run / "config.yaml")}
    (ckpts / "iter_000003" / "trainer.json").write_text("{}")

    def fails(*args: str) -> str:
        capsys.readouterr()
        assert main(["train", "--resume", str(run), *args]) == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err
        return err

    assert "no checkpoint iter_000007 in" in fails("--checkpoint", "iter_7")
    assert "there are iter_000002, iter_000003, iter_000004" in fails("--checkpoint", "7")
    assert "--checkpoint takes iter_N or N" in fails("--checkpoint", "latest")
    assert "iter_000003 cannot be resumed from (trainer.json is 2 bytes, " in fails("--checkpoint", "iter_000003")
    for name in ("iter_000002", "iter_000004"):
        truncate(ckpts / name / "trainer.json")
    err = fails()
    assert "no checkpoint in " in err and "iter_000004 (trainer.json is " in err and "start a new run" in err
    capsys.readouterr()
    assert main(["train", "--config", "smoke", "--checkpoint", "iter_2"]) == 2
    assert "--checkpoint picks one of --resume RUN_DIR's checkpoints" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in before} == before  # nothing already written was touched
    assert sorted(p.name for p in ckpts.glob("iter_*")) == ["iter_000002", "iter_000003", "iter_000004"]

    # an intact one, older than the latest: picked, and the run is cut back to it (nothing to train: 2 of 2 done)
    run = copy_run(four_iterations, tmp_path / "again")
    assert main(["train", "--resume", str(run), "--checkpoint", "2", "run.iterations=2", "rollout.workers=1"]) == 0
    assert "resuming after iteration 2" in capsys.readouterr().out
    assert [int(r["iteration"]) for r in rows(run / "metrics.csv")] == [1, 2]
    assert sorted({int(r["iteration"]) for r in rows(run / "eval.csv")}) == [0, 2]
    assert sorted(p.name for p in (run / "checkpoints").glob("iter_*")) == ["iter_000002"]

