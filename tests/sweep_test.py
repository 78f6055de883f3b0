"""gan-jax sweep: members equal solo runs, sharding changes nothing, a non-finite member is
frozen without touching the others, resume is bit-identical, and the outputs have their rows."""

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import fresh_state, run_two_processes, tiny_config
from data_test import write_idx
from engine_test import image_dataset, narrow_2014_config

from gan_jax import cli, parallel, sample, sweep, sweep_outputs, train
from gan_jax import hparams as hparams_lib
from gan_jax.checkpoint import Checkpointer
from gan_jax.spec import make_spec
from gan_jax.workdir import read_config

# d.lr 1e30 overflows within the first log interval (4 steps); 1e-3 trains normally.
GRID = {"optim.d.lr": ["1e-3", "1e30"]}


def config(num_steps=8, sample_every=0):
    return tiny_config(num_steps=num_steps, checkpoint_every=4, sample_every=sample_every)


def member_state(workdir, index):
    directory = sweep.member_dir(workdir, index)
    member_config = read_config(directory)
    checkpointer = Checkpointer(f"{directory}/checkpoints")
    try:
        return checkpointer.restore(fresh_state(member_config, member_config.seed))
    finally:
        checkpointer.close()


def metrics_rows(workdir, index):
    with open(f"{workdir}/members/{index}/metrics.jsonl") as f:
        return [{**json.loads(line), "seconds": 0} for line in f]


def params(state):
    return jax.tree.leaves((state.g.params, state.d.params))


def assert_params_equal(a, b, rtol=0.0, atol=0.0):
    for x, y in zip(params(a), params(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


def eval_config():
    """config() with samples and the eval metrics (mixture, 200 samples) every log step."""
    c = config(sample_every=4)
    c.eval.update(every=4, metrics="mixture", num_samples=200)
    return c


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """4 members (2 lrs x 2 seeds), one on each of 4 of the 8 fake devices (member_devices);
    members 2, 3 blow up. Also returns the programs compiled and the (member, step) of each
    eval computed."""
    workdir = str(tmp_path_factory.mktemp("sweep"))
    programs, evals = [], []
    compile_program = sweep.compile_program
    evaluate_member = sweep_outputs.evaluate_member

    def recording(*args):
        programs.append(compile_program(*args))
        return programs[-1]

    def counting(member, state, plan):
        evals.append((member.index, int(state.step)))
        return evaluate_member(member, state, plan)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sweep, "compile_program", recording)
        patch.setattr(sweep, "evaluate_member", counting)
        patch.setattr(sweep_outputs, "evaluate_member", counting)
        members = sweep.run_sweep(eval_config(), GRID, 2, workdir)
    return workdir, members, programs, evals


def test_member_equals_a_solo_train_run_of_its_config(swept, tmp_path):
    """Params, and the eval metrics logged every eval.every steps; the last step's eval is
    computed once and is the member's eval.json."""
    workdir, _, _, evals = swept
    solo = train.train_and_evaluate(read_config(sweep.member_dir(workdir, 1)), str(tmp_path))
    # Member 1: seed config.seed + 1, d.lr 1e-3. Alone on its device (4 members on 4 of the 8
    # devices), it runs the solo program: the same numbers to the bit, as the tests compile
    # (conftest.TEST_XLA_FLAGS; with LLVM's optimisations the two compilations may round apart).
    assert read_config(sweep.member_dir(workdir, 1)).seed == 1
    assert_params_equal(member_state(workdir, 1), solo)
    assert sorted(evals) == [(0, 4), (0, 8), (1, 4), (1, 8)]  # not failed members 2, 3
    with open(tmp_path / "metrics.jsonl") as f:
        solo_rows = [json.loads(line) for line in f]
    member_rows = metrics_rows(workdir, 1)
    assert [r["step"] for r in member_rows] == [r["step"] for r in solo_rows] == [4, 8]
    for member_row, solo_row in zip(member_rows, solo_rows, strict=True):
        assert "mixture_modes" in solo_row
        for key, value in solo_row.items():
            if key.startswith("mixture_") and np.ndim(value) == 0:
                np.testing.assert_allclose(member_row[key], value, rtol=1e-4, atol=1e-6)
    with open(f"{workdir}/members/1/eval.json") as f:
        final = {k: v for k, v in json.load(f).items() if k.startswith("mixture_")}
    assert final  # eval.json writes a NaN as null (with its reason); metrics.jsonl as NaN
    for key, value in final.items():
        np.testing.assert_equal(member_rows[-1][key], np.nan if value is None else value)


def test_non_finite_members_are_frozen_and_marked_and_the_others_unchanged(swept, tmp_path):
    workdir, members, *_ = swept
    assert [m.status for m in members] == ["ok", "ok"] + ["failed at step 4 (player D and G)"] * 2
    for index in (2, 3):  # frozen at the last finite state: the initial one
        frozen = member_state(workdir, index)
        assert all(np.all(np.isfinite(p)) for p in params(frozen))
        assert_params_equal(frozen, fresh_state(members[index].config, members[index].seed))
    without = str(tmp_path / "without")
    sweep.run_sweep(config(), {"optim.d.lr": ["1e-3"]}, 2, without)
    for index in (0, 1):
        assert_params_equal(member_state(workdir, index), member_state(without, index))


def test_sharded_over_8_devices_equals_one_device(swept, tmp_path):
    """The 4 members one per device, and all 4 vmapped on one device (member_batch 4, as
    an accelerator runs them by default)."""
    workdir, *_ = swept
    one = str(tmp_path / "one")
    c = config()
    c.train.member_batch = 4
    sweep.run_sweep(c, GRID, 2, one, devices=jax.local_devices()[:1])
    with open(f"{workdir}/sweep.json") as f:
        assert len(json.load(f)["groups"][0]["devices"]) == 4  # sweep.member_devices(4)
    with open(f"{one}/sweep.json") as f:
        group = json.load(f)["groups"][0]
    assert len(group["devices"]) == 1 and group["member_batch"] == 4
    for index in range(4):
        assert_params_equal(member_state(workdir, index), member_state(one, index), 1e-6, 1e-7)


def test_members_run_a_few_at_a_time_equal_members_run_one_per_device(swept, tmp_path, monkeypatch):
    """config.train.member_batch = 3 on one device: the 4 members in batches of 3 and 1
    (jax.lax.map), each with its own numbers and seed; the same params and statuses as the
    members run one per device, and members 2 and 3 still fail alone."""
    workdir, members, *_ = swept
    batches = []
    compile_program = sweep.compile_program

    def recording(*args):
        batches.append(args[-1])
        return compile_program(*args)

    monkeypatch.setattr(sweep, "compile_program", recording)
    looped = str(tmp_path / "looped")
    c = config()
    c.train.member_batch = 3
    got = sweep.run_sweep(c, GRID, 2, looped, devices=jax.local_devices()[:1])
    assert batches == [3]
    with open(f"{looped}/sweep.json") as f:
        assert json.load(f)["groups"][0]["member_batch"] == 3
    assert [m.status for m in got] == [m.status for m in members]
    for index in range(4):
        assert_params_equal(member_state(workdir, index), member_state(looped, index), 1e-6, 1e-7)


def test_a_member_loop_of_the_2014_nets_equals_the_vmapped_members():
    """3 members of the 2014 program (dropout, the SGD schedule) with their own d.lr on one
    device, 2 chunks: run one at a time (a solo run's unbatched step inside the loop, the CPU
    default), they match the members vmapped together, leaf for leaf, counters and rngs too
    (batches of more than one member, and a last short batch: the run_sweep test above)."""
    config = narrow_2014_config(num_steps=8)
    dataset = image_dataset()
    grid = {"optim.d.lr": [0.1, 0.05, 0.02]}
    hparams = [hparams_lib.from_config(m.config) for m in sweep.build_members(config, grid, 1)]
    assert len({float(h.d.lr) for h in hparams}) == 3
    spec = make_spec(config, dataset.x.shape[0])
    mesh = sweep.member_mesh(jax.local_devices()[:1])
    finals = {}
    for member_batch in (3, 1):  # 3: all of them vmapped
        program = sweep.compile_program(spec, hparams[0], dataset, mesh, member_batch)
        hparams_K = jax.device_put(hparams_lib.stack(hparams), program.members)
        seeds_K = jax.device_put(np.arange(3, dtype=np.int32), program.members)
        state = program.init(seeds_K, hparams_K, dataset)
        for _ in range(2):
            state, metrics = program.run_chunk(state, dataset, hparams_K)
        assert program.run_chunk._cache_size() == 1
        finals[member_batch] = jax.device_get((state, metrics))
    assert int(finals[1][0].step) == 4
    for a, b in zip(*(jax.tree.leaves(finals[n]) for n in (3, 1)), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)
    # Each member moved with its own lr: no two members' D params are alike.
    kernel = jax.tree.leaves(finals[1][0].d.params)[0]
    assert not np.allclose(kernel[0], kernel[1]) and not np.allclose(kernel[1], kernel[2])


def test_member_batch_0_runs_one_member_at_a_time_on_cpus_and_all_at_once_elsewhere():
    """sweep.members_per_call: a set N is kept; 0 is 1 on CPU devices and 0 (all of a
    device's members, vmapped) on an accelerator's; sweep.call_size: what a call computed."""
    cpu = sweep.member_mesh(jax.local_devices()[:2])
    accelerator = types.SimpleNamespace(devices=np.array([types.SimpleNamespace(platform="tpu")]))
    assert [sweep.members_per_call(n, cpu) for n in (0, 1, 3)] == [1, 1, 3]
    assert [sweep.members_per_call(n, accelerator) for n in (0, 1, 3)] == [0, 1, 3]
    with pytest.raises(ValueError, match="member_batch -1"):
        sweep.members_per_call(-1, cpu)
    # What sweep.json records: 3 members padded to 2 a device.
    assert [sweep.call_size(n, cpu, 3) for n in (0, 1, 2, 5)] == [1, 1, 2, 2]


def test_one_program_traced_once_for_all_members_and_chunks(swept):
    _, _, programs, _ = swept
    assert len(programs) == 1
    # 2 chunks and 2 log steps of 4 members: each entry point compiled once.
    for fn in (programs[0].run_chunk, programs[0].finite, programs[0].settle):
        assert fn._cache_size() == 1


def test_resume_is_bit_identical(swept, tmp_path, monkeypatch):
    workdir, *_ = swept
    resumed = str(tmp_path / "resumed")
    first = sweep.run_sweep(config(num_steps=4), GRID, 2, resumed)
    assert first[2].status == "failed at step 4 (player D and G)"
    chunks = []
    compile_program = sweep.compile_program

    def counting(*args):
        program = compile_program(*args)
        run_chunk = program.run_chunk
        return program._replace(run_chunk=lambda *a: chunks.append(1) or run_chunk(*a))

    monkeypatch.setattr(sweep, "compile_program", counting)
    members = sweep.run_sweep(config(num_steps=8), GRID, 2, resumed)
    assert len(chunks) == 1  # steps 5..8 only: one chunk of scan_steps = 4
    assert [m.status for m in members] == [m.status for m in swept[1]]
    for index in range(4):
        assert_params_equal(member_state(workdir, index), member_state(resumed, index))
    with open(f"{resumed}/members/0/metrics.jsonl") as f:
        assert [json.loads(line)["step"] for line in f] == [4, 8]
    with open(f"{resumed}/results.csv") as f:
        results = f.read()
    sweep.run_sweep(config(num_steps=8), GRID, 2, resumed)  # done: nothing runs, same results
    assert len(chunks) == 1
    with open(f"{resumed}/results.csv") as f:
        assert f.read() == results
    with pytest.raises(ValueError, match="holds another sweep"):
        sweep.run_sweep(config(num_steps=8), {"optim.d.lr": ["1e-3", "2e-3"]}, 2, resumed)


def test_outputs_have_one_row_per_member_and_per_grid_point(swept, tmp_path):
    workdir, *_ = swept
    with open(f"{workdir}/results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["row"] for r in rows] == [f"member {i}" for i in range(4)] + ["point 0", "point 1"]
    assert [r["seed"] for r in rows[:4]] == ["0", "1", "0", "1"]
    assert [r["status"] for r in rows[:4]] == ["ok"] * 2 + ["failed at step 4 (player D and G)"] * 2
    assert [float(r["optim.d.lr"]) for r in rows] == [1e-3, 1e-3, 1e30, 1e30, 1e-3, 1e30]
    losses = [float(rows[i]["d_loss"]) for i in (0, 1)]
    assert float(rows[4]["d_loss"]) == pytest.approx(np.mean(losses))
    assert float(rows[4]["d_loss_std"]) == pytest.approx(np.std(losses))
    assert rows[4]["seed"] == "2 of 2 ok" and rows[5]["status"] == "2 failed"
    with open(f"{workdir}/members/1/metrics.jsonl") as f:
        last = [json.loads(line) for line in f][-1]
    assert last["step"] == 8 and float(rows[1]["d_loss"]) == pytest.approx(last["d_loss"])
    with open(f"{workdir}/results.md") as f:
        assert len(f.read().splitlines()) == 2 + 6
    with open(f"{workdir}/sweep.json") as f:
        record = json.load(f)
    assert record["grid"] == {"optim.d.lr": [1e-3, 1e30]}
    (group,) = record["groups"]
    assert (group["members"], group["values"], group["padded_members"]) == ([0, 1, 2, 3], {}, 4)
    assert [m["seed"] for m in record["members"]] == [0, 1, 0, 1]
    assert (Path(workdir) / "members/0/samples/step_8.png").exists()
    sample.sample(sweep.member_dir(workdir, 0), 3, 0, str(tmp_path / "s.npz"))
    assert np.load(tmp_path / "s.npz")["x"].shape == (3, 2)


def test_grid_flags_override_get_sweep(tmp_path):
    experiment = tmp_path / "exp.py"
    experiment.write_text(
        "from gan_jax.config import default_config\n"
        "def get_config():\n    return default_config()\n"
        "def get_sweep():\n    return {'optim.d.lr': [1e-3, 2e-3], 'loss.real_label': [0.9]}\n"
    )
    grid = sweep.command_grid(str(experiment), ["optim.d.lr=5e-4,1e-4", "optim.g.b1=0.5"])
    assert grid == {
        "optim.d.lr": ["5e-4", "1e-4"],
        "loss.real_label": [0.9],
        "optim.g.b1": ["0.5"],
    }
    members = sweep.build_members(config(), sweep.make_grid(config(), grid), 3)
    assert len(members) == 2 * 1 * 1 * 3
    assert [(m.values["optim.d.lr"], m.seed) for m in members[:4]] == [
        (5e-4, 0),
        (5e-4, 1),
        (5e-4, 2),
        (1e-4, 0),
    ]
    assert members[3].config.optim.d.lr == 1e-4 and members[3].config.optim.g.b1 == 0.5


@pytest.mark.parametrize(
    "flag, message",
    [
        ("optim.d.lrr=1e-3", "--sweep optim.d.lrr: not a config key"),
        ("seed=1,2", "--sweep seed: members' seeds come from --seeds S"),
        ("model=a,b", "--sweep model: a group of keys"),
        ("train.batch_size=16,3.5", "--sweep train.batch_size: '3.5' is not a whole number"),
        ("model.discriminator_kwargs=a", "--sweep model.discriminator_kwargs: a group of keys"),
        ("optim.d.lr=1e-3,abc", "--sweep optim.d.lr: 'abc' is not a number"),
        ("optim.d.lr", "--sweep 'optim.d.lr' is not KEY=V1,V2,..."),
        ("loss.name=minimax,lsgam", "sweep member 1 ({'loss.name': 'lsgam'}): config.loss.name"),
    ],
)
def test_bad_sweeps_stop_with_one_line_before_any_work(flag, message, tmp_path):
    workdir = tmp_path / "w"
    args = cli.parse_flags(
        ["gan-jax", "sweep", "--config=experiments/ring8.py", f"--workdir={workdir}"]
        + ["--sweep", flag]
    )
    with pytest.raises(SystemExit) as exit_info:
        cli.main(args)
    assert str(exit_info.value.code).startswith(f"error: {message}"), exit_info.value.code
    assert not workdir.exists()


def test_members_that_need_another_program_run_in_groups_and_equal_solo_runs(tmp_path):
    """Two groups (one per loss); a stop request (SIGINT) in group 0 saves it and leaves group
    1 unstarted; the same sweep again resumes group 0, runs group 1, and both equal solo runs."""
    grid = {"loss.name": ["non_saturating", "lsgan"], "optim.d.lr": ["1e-3", "2e-3"]}
    workdir = str(tmp_path / "w")
    programs = []
    compile_program = sweep.compile_program

    def interrupted(*args):
        program = compile_program(*args)

        def run_chunk(*a):
            os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C would, during the first chunk
            return program.run_chunk(*a)

        return program._replace(run_chunk=run_chunk)

    def recording(*args):
        programs.append(args[0])  # the Spec
        return compile_program(*args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sweep, "compile_program", interrupted)
        stopped = sweep.run_sweep(config(), grid, 1, workdir)
    assert [m.status for m in stopped[2:]] == ["not run (the sweep was stopped)"] * 2
    assert not (tmp_path / "w" / "groups" / "1").exists()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sweep, "compile_program", recording)
        members = sweep.run_sweep(config(), grid, 1, workdir)
    assert [(m.group, m.status) for m in members] == [(0, "ok"), (0, "ok"), (1, "ok"), (1, "ok")]
    assert [spec.loss for spec in programs] == ["non_saturating", "lsgan"]
    with open(tmp_path / "w" / "sweep.json") as f:
        groups = json.load(f)["groups"]
    assert [(g["members"], g["values"]) for g in groups] == [
        ([0, 1], {"loss.name": "non_saturating"}),
        ([2, 3], {"loss.name": "lsgan"}),
    ]
    assert (tmp_path / "w" / "plots" / "g_loss.png").exists()  # a heatmap with a named axis
    assert not (tmp_path / "w" / "members" / "0" / "samples").exists()  # sample_every 0
    for index in (1, 3):
        solo_config = read_config(sweep.member_dir(workdir, index))
        solo = train.train_and_evaluate(solo_config, str(tmp_path / f"solo{index}"))
        assert_params_equal(member_state(workdir, index), solo, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "num_members, num_devices", [(1, 1), (3, 3), (4, 4), (8, 8), (9, 5), (16, 8), (17, 6)]
)
def test_a_group_takes_the_fewest_devices_that_give_the_fewest_members_each(
    num_members, num_devices
):
    devices = sweep.member_devices(num_members)  # of the 8 fake CPU devices
    assert devices == jax.devices()[:num_devices]
    per_device = -(-num_members // num_devices)
    assert per_device == -(-num_members // 8)  # as few members per device as all 8 give


def test_gan_jax_sweep_asks_for_one_cpu_device_per_core_unless_xla_flags_set_a_count(
    monkeypatch,
):
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/x")
    assert parallel.one_cpu_device_per_core()
    cores = len(os.sched_getaffinity(0))
    assert os.environ["XLA_FLAGS"] == (
        f"--xla_dump_to=/tmp/x --xla_force_host_platform_device_count={cores}"
    )
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
    assert not parallel.one_cpu_device_per_core()
    assert os.environ["XLA_FLAGS"] == "--xla_force_host_platform_device_count=1"


def test_a_number_that_changes_the_spec_splits_the_group():
    members = sweep.build_members(config(), {"loss.clip_weights": [0.01, 0.0, 0.02]}, 1)
    groups = sweep.group_members(members, lambda c: None)
    assert [[m.index for m in g] for g in groups] == [[0, 2], [1]]


def test_checkpoints_follow_their_status_and_one_member_runs_the_solo_program(
    tmp_path, monkeypatch
):
    """Every stacked checkpoint finds its status on disk, so that a process killed between the
    two never leaves a checkpoint whose failed members a resumed sweep would take for ok ones
    (seen as a flaky SIGKILL test before the order was fixed)."""
    written = []
    save = Checkpointer.save

    def checking(self, state):
        if "groups" in self.directory:
            group_dir = os.path.dirname(self.directory)
            written.append(sweep_outputs.read_status(group_dir, int(state.step)) != {})
        return save(self, state)

    monkeypatch.setattr(Checkpointer, "save", checking)
    workdir = str(tmp_path / "w")
    sweep.run_sweep(config(), {"optim.d.lr": ["2e-3"]}, 1, workdir)
    assert written == [True, True, True]  # steps 4 and 8, and the end (8 again: a no-op)
    # One member runs unbatched (no vmap over a size-1 axis): exactly the solo run's numbers.
    monkeypatch.undo()
    solo = train.train_and_evaluate(read_config(sweep.member_dir(workdir, 0)), str(tmp_path / "s"))
    assert_params_equal(member_state(workdir, 0), solo)


SWEEP_FILE = """
import sys
sys.path.insert(0, {tests!r})
from conftest import tiny_config
def get_config():
    return tiny_config(num_steps=100000, checkpoint_every=4, keep_checkpoints=100)
def get_sweep():
    return {{"optim.d.lr": [1e-3, 1e30]}}
"""


def test_sigkill_mid_sweep_resumes_bit_identical(tmp_path):
    experiment = tmp_path / "tiny_sweep.py"
    experiment.write_text(SWEEP_FILE.format(tests=str(Path(__file__).parent)))
    workdir = tmp_path / "killed"
    command = [sys.executable, "-m", "gan_jax", "sweep", f"--config={experiment}"]
    proc = subprocess.Popen(
        [*command, f"--workdir={workdir}", "--seeds=2"],
        cwd=Path(__file__).parents[1],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.time() + 120
    while (
        len([d for d in (workdir / "groups" / "0" / "checkpoints").glob("*") if d.name.isdigit()])
        < 2
    ):
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        assert time.time() < deadline, "no 2 checkpoints in 120 s"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    checkpointer = Checkpointer(str(workdir / "groups" / "0" / "checkpoints"))
    target = checkpointer.latest_step() + 4
    checkpointer.close()
    members = sweep.run_sweep(config(num_steps=target), GRID, 2, str(workdir))
    straight = str(tmp_path / "straight")
    straight_members = sweep.run_sweep(config(num_steps=target), GRID, 2, straight)
    assert [m.status for m in members] == [m.status for m in straight_members]
    for index in range(4):
        assert_params_equal(member_state(str(workdir), index), member_state(straight, index))
    for index in (0, 1):  # every log step once, as the unbroken sweep wrote it (bar the time)
        rows = [metrics_rows(d, index) for d in (workdir, straight)]
        assert rows[0] == rows[1] and [r["step"] for r in rows[0]] == list(range(4, target + 1, 4))


MULTIHOST_FILE = """
import sys
sys.path.insert(0, {tests!r})
from conftest import tiny_config
def get_config():
    c = tiny_config(num_steps=8, checkpoint_every=4)
    c.eval.update(every=4, metrics="mixture", num_samples=200)
    return c
def get_sweep():
    return {{"optim.d.lr": [1e-3, 1e30]}}
"""


def test_two_processes_of_four_devices_equal_one_process_of_eight(swept, tmp_path):
    """The `swept` fixture's sweep (8 local devices) run by 2 processes x 4 fake devices."""
    workdir, members, *_ = swept
    experiment = tmp_path / "multihost_sweep.py"
    experiment.write_text(MULTIHOST_FILE.format(tests=str(Path(__file__).parent)))
    multihost = tmp_path / "multihost"
    command = ["sweep", f"--config={experiment}", f"--workdir={multihost}", "--seeds=2"]
    run_two_processes(command, tmp_path)
    with open(multihost / "sweep.json") as f:
        record = json.load(f)
    assert record["processes"] == 2 and len(record["groups"][0]["devices"]) == 8
    for index in range(4):
        assert_params_equal(member_state(str(multihost), index), member_state(workdir, index))
    with open(multihost / "results.csv") as f, open(f"{workdir}/results.csv") as g:
        assert f.read() == g.read()


def test_member_of_a_2014_sweep_equals_gan_jax_train_with_the_sgd_schedule_and_dropout(tmp_path):
    """The 2014 program (maxout D with dropout, SGD with lr decay and a momentum ramp, G's
    output bias from the data) through run_sweep and through a solo train run, on 32 random
    MNIST-format images."""
    images = np.random.default_rng(0).integers(0, 256, (32, 28, 28))
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.arange(32) % 10)
    base = narrow_2014_config(num_steps=8)
    base.data.dir = str(tmp_path)
    base.train.checkpoint_every = 0
    base.seed = 3
    workdir = str(tmp_path / "sweep")
    sweep.run_sweep(base, {"optim.d.lr": [0.1, 0.02]}, 1, workdir, jax.local_devices()[:2])
    solo_config = read_config(sweep.member_dir(workdir, 1))
    assert (solo_config.seed, solo_config.optim.d.lr) == (3, 0.02)
    solo = train.train_and_evaluate(solo_config, str(tmp_path / "solo"))
    dataset = train.load_data(solo_config)
    directory = sweep.member_dir(workdir, 1)
    checkpointer = Checkpointer(f"{directory}/checkpoints")
    try:
        member = checkpointer.restore(fresh_state(solo_config, 3, dataset))
    finally:
        checkpointer.close()
    assert_params_equal(member, solo)  # alone on its device: the solo program
    hyper = member.d.opt_state.hyperparams
    # The last of 8 updates ran at lr / 1.05^7, 3/8 of the way up the momentum ramp.
    np.testing.assert_allclose(hyper["learning_rate"], 0.02 / 1.05**7, rtol=1e-5)
    np.testing.assert_allclose(hyper["momentum"], 0.5 + 0.2 * 3 / 8, rtol=1e-6)


@pytest.mark.slow  # make test-all: it guards speed, not numbers (sharded equals one device)
def test_the_sweep_step_has_no_collective_between_devices():
    """Members share nothing, so the compiled chunk of 8 members on 4 devices holds no
    all-reduce or other collective. Under jit's automatic partitioning alone, the cycle walk of
    data.shuffled_index (a while_loop, vmapped over members) ended each of its iterations
    with an all-reduce of its condition over every device."""
    config = narrow_2014_config(num_steps=8)
    dataset = image_dataset()
    hparams = [hparams_lib.from_config(m.config) for m in sweep.build_members(config, {}, 8)]
    program = sweep.compile_program(
        make_spec(config, dataset.x.shape[0]),
        hparams[0],
        dataset,
        sweep.member_mesh(jax.local_devices()[:4]),
    )
    dataset = jax.device_put(dataset, program.replicated)
    hparams_K = jax.device_put(hparams_lib.stack(hparams), program.members)
    seeds_K = jax.device_put(np.arange(8, dtype=np.int32), program.members)
    state = program.init(seeds_K, hparams_K, dataset)
    hlo = program.run_chunk.lower(state, dataset, hparams_K).compile().as_text()
    assert "dot(" in hlo or "fusion(" in hlo  # the step itself was compiled
    pattern = r"(all-reduce|all-gather|reduce-scatter|collective-permute|all-to-all)(-start)?\("
    assert re.findall(pattern, hlo) == []
