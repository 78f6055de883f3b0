"""A sweep's outputs without training: results rows and eval columns against numpy, plot numbers
against numpy, valid PNGs, TensorBoard event files read back with a plain reader, and member
eval records equal to what `gan-jax eval` writes."""

import csv
import functools
import itertools
import json
import os
import struct
import threading
import warnings

import jax
import numpy as np
import pytest
from conftest import tiny_config
from PIL import Image
from tensorboardX.proto.event_pb2 import Event

from gan_jax import engine, evaluate, hparams, sweep_outputs, sweep_plots, train
from gan_jax.sweep_grid import build_members

SEEDS = 3
GRIDS = {
    1: {"optim.d.lr": [1e-4, 1e-3, 1e-2]},
    2: {"optim.d.lr": [1e-4, 1e-3], "optim.g.lr": [1e-4, 3e-4, 1e-3]},
    3: {"optim.d.lr": [1e-4, 1e-3], "optim.g.lr": [1e-4, 1e-3], "loss.real_label": [0.9, 1.0]},
}


def fake_sweep(grid, failed=(), seed=0):
    """Members of `grid` x SEEDS with random final losses and eval metrics (a scalar 'modes'
    and a list 'histogram', which gets no column); members in `failed` have neither."""
    members = build_members(tiny_config(), grid, SEEDS)
    rng = np.random.default_rng(seed)
    final, evals = {}, {}
    for m in members:
        if m.index in failed:
            m.status = "failed at step 4 (player D)"
            continue
        final[m.index] = {"d_loss": float(rng.normal()), "g_loss": float(rng.normal())}
        evals[m.index] = {"modes": float(rng.integers(0, 9)), "histogram": [1, 2]}
    return members, final, evals


def member_values(members, source, name):
    """metric `name` as [grid point, seed], NaN for members without it (members are point
    major, seed minor, as build_members makes them)."""
    flat = [source.get(m.index, {}).get(name, np.nan) for m in members]
    return np.array(flat, float).reshape(-1, SEEDS)


def point_mean_std(v_PxS):
    """numpy reference: mean and std (ddof 0) per point over the seeds that have a value."""
    mean, std = [], []
    for row in v_PxS:
        ok = row[np.isfinite(row)]
        mean.append(ok.mean() if ok.size else np.nan)
        std.append(ok.std() if ok.size else np.nan)
    return np.array(mean), np.array(std)


def test_results_rows_mean_and_std_over_ok_members_with_eval_columns():
    grid = GRIDS[2]
    members, final, evals = fake_sweep(grid, failed={1, 2, 4})  # point 0: 1 of 3 ok; 1: 2 of 3
    rows = sweep_outputs.results_rows(members, grid, final, evals)
    columns = list(rows[0])
    assert columns[columns.index("status") + 1 :] == [
        "d_loss",
        "g_loss",
        "modes",
        "d_loss_std",
        "g_loss_std",
        "modes_std",
    ]
    member_rows, point_rows = rows[: len(members)], rows[len(members) :]
    assert np.isnan(member_rows[1]["modes"]) and member_rows[0]["modes"] == evals[0]["modes"]
    for name, source in (("d_loss", final), ("g_loss", final), ("modes", evals)):
        mean, std = point_mean_std(member_values(members, source, name))
        np.testing.assert_allclose([r[name] for r in point_rows], mean, rtol=1e-12)
        np.testing.assert_allclose([r[f"{name}_std"] for r in point_rows], std, rtol=1e-12)
    assert [r["seed"] for r in point_rows[:3]] == ["1 of 3 ok", "2 of 3 ok", "3 of 3 ok"]
    assert point_rows[0]["status"] == "2 failed" and point_rows[2]["status"] == "ok"
    # Without evals the table is the one the sweep wrote before eval columns existed.
    plain = sweep_outputs.results_rows(members, grid, final)
    assert [c for c in plain[0] if "modes" in c] == [] and "group" not in plain[0]


def test_series_and_heatmap_equal_numpy_reductions_of_the_members():
    for num_keys, grid in GRIDS.items():
        members, final, _ = fake_sweep(grid, failed={0, 1, 2}, seed=num_keys)  # point 0 failed
        rows = sweep_outputs.results_rows(members, grid, final)
        shape = [len(v) for v in grid.values()]
        mean_P, std_P = point_mean_std(member_values(members, final, "d_loss"))
        mean_G, std_G = mean_P.reshape(shape), std_P.reshape(shape)
        if num_keys == 2:
            np.testing.assert_allclose(
                sweep_plots.heatmap_table(rows, grid, "d_loss"), mean_G, rtol=1e-12
            )
        for axis, key in enumerate(grid):
            x, mean, std = sweep_plots.series(rows, grid, key, "d_loss")
            assert x == grid[key]
            if num_keys == 1:
                np.testing.assert_allclose(mean, mean_G, rtol=1e-12)
                np.testing.assert_allclose(std, std_G, rtol=1e-12)
                continue
            # Mean and std over the other keys' points, the all-failed point left out.
            moved = np.moveaxis(mean_G, axis, 0).reshape(len(grid[key]), -1)
            np.testing.assert_allclose(mean, np.nanmean(moved, axis=1), rtol=1e-12)
            np.testing.assert_allclose(std, np.nanstd(moved, axis=1), rtol=1e-12)
    with pytest.raises(ValueError, match="exactly 2 swept keys"):
        sweep_plots.heatmap_table(rows, grid, "d_loss")
    with pytest.raises(ValueError, match="'modes' is not a results column"):
        sweep_plots.series(rows, grid, "optim.d.lr", "modes")


def test_write_plots_one_valid_png_per_metric_column(tmp_path):
    for num_keys, grid in GRIDS.items():
        members, final, _ = fake_sweep(grid, failed={0, 1, 2})
        rows = sweep_outputs.results_rows(members, grid, final)
        paths = sweep_plots.write_plots(str(tmp_path / str(num_keys)), rows, grid)
        assert [os.path.basename(p) for p in paths] == ["d_loss.png", "g_loss.png"]
        for path in paths:
            with open(path, "rb") as f:
                assert f.read(8) == b"\x89PNG\r\n\x1a\n"
            with Image.open(path) as image:
                image.verify()
    assert sweep_plots.write_plots(str(tmp_path / "0"), rows, {}) == []


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), bit by bit."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def masked(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def read_events(path):
    """The Event protos of a TFRecord file, each record's two checksums verified."""
    with open(path, "rb") as f:
        buffer = f.read()
    events, at = [], 0
    while at < len(buffer):
        header = buffer[at : at + 8]
        (length,) = struct.unpack("<Q", header)
        assert struct.unpack("<I", buffer[at + 8 : at + 12])[0] == masked(crc32c(header))
        data = buffer[at + 12 : at + 12 + length]
        assert struct.unpack("<I", buffer[at + 12 + length : at + 16 + length])[0] == masked(
            crc32c(data)
        )
        events.append(Event.FromString(data))
        at += 16 + length
    return events


def scalars(events):
    return [(e.step, v.tag, round(v.simple_value, 5)) for e in events for v in e.summary.value]


def test_member_writers_jsonl_and_tensorboard_per_member_resume_purges(tmp_path):
    workdir = str(tmp_path)
    fds = len(os.listdir("/proc/self/fd"))
    threads = threading.active_count()
    writers = sweep_outputs.MemberWriters(workdir, range(64))
    for step, index in itertools.product((4, 8), range(64)):
        writers.write(step, index, {"d_loss": np.float32(index + step / 10), "seconds": 1.5})
    # 64 members hold no file open and start no thread.
    assert len(os.listdir("/proc/self/fd")) == fds and threading.active_count() == threads
    writers.write_eval(8, 3, {"modes": 7.0, "reverse_kl": float("nan")})
    writers.close()
    rows = [json.loads(line) for line in open(f"{workdir}/members/3/metrics.jsonl")]
    assert rows == [
        {"step": 4, "d_loss": pytest.approx(3.4), "seconds": 1.5},
        {"step": 8, "d_loss": pytest.approx(3.8), "seconds": 1.5},
    ]
    (first,) = os.listdir(f"{workdir}/members/3/tensorboard")
    events = read_events(f"{workdir}/members/3/tensorboard/{first}")
    assert events[0].file_version == "brain.Event:2"
    assert events[1].session_log.status == events[1].session_log.START and events[1].step == 1
    assert scalars(events) == [
        (4, "d_loss", 3.4),
        (4, "seconds", 1.5),
        (8, "d_loss", 3.8),
        (8, "seconds", 1.5),
        (8, "modes", 7.0),  # the NaN reverse KL is left out
    ]
    # Resuming the checkpoint at step 4 drops row 8 and purges TensorBoard's steps >= 5.
    resumed = sweep_outputs.MemberWriters(workdir, [3], initial_step=4)
    resumed.write(8, 3, {"d_loss": 0.5})
    rows = [json.loads(line)["d_loss"] for line in open(f"{workdir}/members/3/metrics.jsonl")]
    assert rows == [pytest.approx(3.4), 0.5]
    names = sorted(os.listdir(f"{workdir}/members/3/tensorboard"))
    assert names[0] == first and len(names) == 2  # the new file sorts after the first
    events = read_events(f"{workdir}/members/3/tensorboard/{names[1]}")
    assert events[1].session_log.status == events[1].session_log.START and events[1].step == 5
    assert scalars(events) == [(8, "d_loss", 0.5)]
    off = sweep_outputs.MemberWriters(str(tmp_path / "other"), [0], enabled=False)
    assert off.write(4, 0, {"d_loss": 1.0}) == {"step": 4, "d_loss": 1.0}
    assert not (tmp_path / "other").exists()


def test_member_outputs_eval_json_equals_gan_jax_eval_and_failed_members_get_none(
    tmp_path, monkeypatch
):
    config = tiny_config(sample_every=4)
    config.eval.metrics, config.eval.num_samples = "mixture", 200
    grid = {"optim.d.lr": [1e-3]}
    members = build_members(config, grid, 2)
    members[1].status = "failed at step 4 (player G)"
    plan = sweep_outputs.eval_plan(config)
    workdir = str(tmp_path)
    writers = sweep_outputs.MemberWriters(workdir, [0, 1])
    final = {0: {"d_loss": 1.0, "g_loss": 2.0}}
    init = jax.jit(functools.partial(engine.init, spec=engine.make_spec(config, None)))
    state = init(jax.random.PRNGKey(0), hparams.from_config(config), None)
    # Drawing is tested above (plots) and in sweep_test (samples); here only the calls.
    plotted, sampled = [], []
    monkeypatch.setattr(sweep_plots, "write_plots", lambda *args: plotted.append(args))
    monkeypatch.setattr(train, "save_samples", lambda c, s, d, step: sampled.append((d, step)))
    evals = sweep_outputs.write_group_outputs(workdir, members, lambda i: state, 0, plan, writers)
    rows = sweep_outputs.write_sweep_results(workdir, grid, members, final, evals)
    with open(f"{workdir}/members/0/eval.json") as f:
        written = json.load(f)
    assert not os.path.exists(f"{workdir}/members/1/eval.json")
    # `gan-jax eval` on the member's workdir (its checkpoint and config) writes the same record.
    assert evaluate.evaluate(sweep_outputs.member_dir(workdir, 0), "mixture", 200) == written
    assert written["step"] == 0 and written["num_samples"] == 200
    names = ["mixture_modes", "mixture_high_quality_pct", "mixture_reverse_kl"]
    assert [k for k in written if k.startswith("mixture")] == names
    with open(f"{workdir}/results.csv") as f:
        table = list(csv.DictReader(f))
    assert [float(table[0][k]) for k in names[:2]] == [written[k] for k in names[:2]]
    assert table[1]["mixture_modes"] == "nan" and table[2]["seed"] == "1 of 2 ok"
    assert float(table[2]["mixture_modes"]) == written["mixture_modes"]
    assert plotted == [(workdir, rows, grid)]
    assert sampled == [(sweep_outputs.member_dir(workdir, i), 0) for i in (0, 1)]
    assert sweep_plots.metric_columns(rows) == ["d_loss", "g_loss", *names]
    (events,) = os.listdir(f"{workdir}/members/0/tensorboard")
    tags = [t for _, t, _ in scalars(read_events(f"{workdir}/members/0/tensorboard/{events}"))]
    assert tags == [k for k in names if written[k] is not None]  # a null reverse KL left out
    # A rerun of the finished sweep writes the same eval.json and no second set of scalars.
    sweep_outputs.write_group_outputs(workdir, members, lambda i: state, 0, plan, writers)
    with open(f"{workdir}/members/0/eval.json") as f:
        assert json.load(f) == written
    again = [t for _, t, _ in scalars(read_events(f"{workdir}/members/0/tensorboard/{events}"))]
    assert again == tags
    # A rerun after an earlier one that evaluated fewer metrics at this step (eval.metrics
    # grown since): the metrics its eval.json lacks go to TensorBoard, the others not again.
    with open(f"{workdir}/members/0/eval.json", "w") as f:
        json.dump({"step": 0, "num_samples": 200, "mixture_modes": written["mixture_modes"]}, f)
    sweep_outputs.write_group_outputs(workdir, members, lambda i: state, 0, plan, writers)
    grown = [t for _, t, _ in scalars(read_events(f"{workdir}/members/0/tensorboard/{events}"))]
    assert grown == tags + tags[1:]
    # A rerun after one killed between the final checkpoint and eval.json, whose eval.every
    # had logged the metrics at this step with the member's metrics: not written again.
    os.remove(f"{workdir}/members/0/eval.json")
    with open(f"{workdir}/members/0/metrics.jsonl", "w") as f:
        f.write(json.dumps({"step": 0, "d_loss": 1.0, **evals[0]}) + "\n")
    sweep_outputs.write_group_outputs(workdir, members, lambda i: state, 0, plan, writers)
    killed = [t for _, t, _ in scalars(read_events(f"{workdir}/members/0/tensorboard/{events}"))]
    assert killed == grown
    assert sweep_outputs.eval_plan(tiny_config()) is None
    config.eval.metrics = "fd"
    with pytest.raises(ValueError, match=r"metrics \['fd'\] do not apply to data.name='ring8'"):
        sweep_outputs.eval_plan(config)


def test_write_plots_draws_a_metric_without_any_finite_point_on_a_log_spaced_key(tmp_path):
    # Every member failed, or an eval metric NaN for all (a ring G far from every mode): the
    # panel is empty, on the key's own log-scaled range, instead of matplotlib's error.
    grid = GRIDS[1]
    members, final, _ = fake_sweep(grid, failed=set(range(3 * SEEDS)))
    rows = sweep_outputs.results_rows(members, grid, final)
    paths = sweep_plots.write_plots(str(tmp_path), rows, grid)
    assert [os.path.basename(p) for p in paths] == ["d_loss.png", "g_loss.png"]
    with Image.open(paths[0]) as image:
        image.verify()
    one = {"optim.d.lr": [1e-3]}  # a key of one value: no range of its own to set
    members, final, _ = fake_sweep(one, failed=set(range(SEEDS)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib's 'identical low and high xlims'
        sweep_plots.write_plots(str(tmp_path), sweep_outputs.results_rows(members, one, final), one)
