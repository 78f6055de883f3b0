"""gan_jax.curves and `gan-jax curve`: logged metrics against steps, their extremes, the PNG."""

import json

import numpy as np
import pytest
from PIL import Image

from gan_jax import cli, curves, plotting

# A run's log as the trainer writes it: training rows every 100 steps, eval rows (with the
# Parzen estimate and its standard error) every 200, one eval logged non-finite (null).
ROWS = [
    {"step": 100, "d_loss": 1.2},
    {"step": 200, "d_loss": 1.1, "parzen_ll": 10.5, "parzen_ll_stderr": 2.0},
    {"step": 300, "d_loss": 1.0},
    {"step": 400, "d_loss": 0.9, "parzen_ll": None, "seconds": 3.0},
    {"step": 600, "d_loss": 0.8, "parzen_ll": 42.0, "parzen_ll_stderr": 1.5},
    {"step": 800, "d_loss": 0.85, "parzen_ll": 40.25, "parzen_ll_stderr": 1.25},
    {"step": 800, "alarm": "D is winning"},
]


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return tmp_path


def test_read_curves_takes_each_metric_where_it_was_logged_with_its_stderr(workdir):
    got = curves.read_curves(str(workdir), ["parzen_ll", "d_loss"])
    np.testing.assert_array_equal(got["parzen_ll"]["step"], [200, 600, 800])
    np.testing.assert_array_equal(got["parzen_ll"]["value"], [10.5, 42.0, 40.25])
    np.testing.assert_array_equal(got["parzen_ll"]["stderr"], [2.0, 1.5, 1.25])
    np.testing.assert_array_equal(got["d_loss"]["step"], [100, 200, 300, 400, 600, 800])
    assert "stderr" not in got["d_loss"]


def test_summary_gives_the_lowest_highest_and_last_points(workdir):
    record = curves.curve([str(workdir)], ["parzen_ll"], steps_per_epoch=200)
    assert "over_runs" not in record and record["runs"][0]["workdir"] == str(workdir)
    assert record["runs"][0]["parzen_ll"] == {
        "points": 3,
        "lowest": {"step": 200, "value": 10.5, "epoch": 1.0},
        "highest": {"step": 600, "value": 42.0, "epoch": 3.0},
        "last": {"step": 800, "value": 40.25, "epoch": 4.0},
    }
    assert record["out"] == str(workdir / "curve_parzen_ll.png")
    with Image.open(record["out"]) as image:
        assert image.format == "PNG" and image.size[0] > 100


def test_bad_requests_are_named_before_anything_is_written(workdir, tmp_path_factory):
    out = str(workdir / "c.png")
    with pytest.raises(ValueError, match=r"metric 'parzen' is not logged .*\['d_loss', "):
        curves.curve([str(workdir)], ["parzen"], out)
    with pytest.raises(ValueError, match="steps_per_epoch = 0 is not allowed"):
        curves.curve([str(workdir)], ["d_loss"], out, steps_per_epoch=0)
    with pytest.raises(ValueError, match="'c.jpg' is not allowed; expected a path ending in .png"):
        curves.curve([str(workdir)], ["d_loss"], "c.jpg")
    with pytest.raises(ValueError, match="reference = nan is not allowed"):
        curves.curve([str(workdir)], ["d_loss"], out, reference=float("nan"))
    with pytest.raises(ValueError, match="reference = 0.0 is not allowed with log_y"):
        curves.curve([str(workdir)], ["d_loss"], out, reference=0.0, log_y=True)
    with pytest.raises(ValueError, match="no workdir"):
        curves.curve([], ["d_loss"], out)
    with pytest.raises(ValueError, match="no metric named"):
        curves.curve([str(workdir)], [], out)
    (workdir / "metrics.jsonl").write_text(json.dumps({"step": 1, "g_loss": -1.0}) + "\n")
    with pytest.raises(ValueError, match="log_y needs values > 0"):
        curves.curve([str(workdir)], ["g_loss"], out, log_y=True)
    with pytest.raises(ValueError, match="no metrics.jsonl: --workdir must be a training workdir"):
        curves.curve([str(tmp_path_factory.mktemp("empty"))], ["d_loss"], out)
    assert not (workdir / "c.png").exists()


def test_the_command_line_reaches_curve(workdir, capsys):
    args = cli.parse_flags(
        ["gan-jax", "curve", f"--workdir={workdir}", "--metrics=parzen_ll,d_loss"]
        + ["--steps_per_epoch=100", "--reference=225", "--reference_label=paper", "--log_y"]
        + [f"--out={workdir / 'x.png'}"]
    )
    assert args.run is cli.run_curve
    args.run(args)
    record = json.loads(capsys.readouterr().out)
    assert record["out"] == str(workdir / "x.png") and (workdir / "x.png").exists()
    assert record["runs"][0]["d_loss"]["lowest"] == {"step": 600, "value": 0.8, "epoch": 6.0}
    assert record["runs"][0]["parzen_ll"]["highest"]["value"] == 42.0


def test_several_runs_give_their_mean_and_std_at_the_steps_all_of_them_logged(
    workdir, tmp_path_factory, capsys
):
    second = tmp_path_factory.mktemp("seed1")
    rows = [  # logs 200 and 800 like the first run, 400 where the first logged NaN, not 600
        {"step": 200, "parzen_ll": 20.5},
        {"step": 400, "parzen_ll": 30.0},
        {"step": 800, "parzen_ll": 50.25},
    ]
    (second / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = str(second / "both.png")
    args = cli.parse_flags(
        ["gan-jax", "curve", "--workdir", str(workdir), str(second), "--metrics=parzen_ll"]
        + [f"--out={out}"]
    )
    args.run(args)
    record = json.loads(capsys.readouterr().out)
    assert [run["workdir"] for run in record["runs"]] == [str(workdir), str(second)]
    assert record["runs"][1]["parzen_ll"]["highest"] == {"step": 800, "value": 50.25}
    values_RxS = np.array([[10.5, 40.25], [20.5, 50.25]])
    assert record["over_runs"]["parzen_ll"] == {
        "step": [200, 800],
        "mean": values_RxS.mean(axis=0).tolist(),
        "std": values_RxS.std(axis=0).tolist(),
        "lowest": values_RxS.min(axis=0).tolist(),
        "highest": values_RxS.max(axis=0).tolist(),
        "runs": 2,
    }
    with Image.open(out) as image:
        assert image.format == "PNG"
    (second / "metrics.jsonl").write_text(json.dumps({"step": 100, "parzen_ll": 1.0}) + "\n")
    with pytest.raises(ValueError, match="'parzen_ll': no step is logged by all of"):
        curves.curve([str(workdir), str(second)], ["parzen_ll"], str(second / "none.png"))
    assert not (second / "none.png").exists()


def test_a_log_being_written_resumed_or_non_finite_gives_finite_points_and_strict_json(
    tmp_path, capsys
):
    # A sweep member logs a reverse KL of an empty histogram as NaN; rows appended twice for
    # one step keep the later one; the last line may be half written by the running trainer.
    lines = [
        json.dumps({"step": 100, "kl": float("nan"), "d_loss": 1.0}),
        json.dumps({"step": 200, "kl": 2.5, "d_loss": 0.5}),
        json.dumps({"step": 300, "kl": float("inf"), "d_loss": 0.75}),
        json.dumps({"step": 200, "kl": 1.5, "d_loss": 0.25}),
        json.dumps({"step": 400, "kl": 2.0, "d_loss": 0.5}),
        '{"step": 500, "kl": 0.1, "d_lo',
    ]
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines))
    got = curves.read_curves(str(tmp_path), ["kl", "d_loss"])
    np.testing.assert_array_equal(got["kl"]["step"], [200, 400])
    np.testing.assert_array_equal(got["kl"]["value"], [1.5, 2.0])
    np.testing.assert_array_equal(got["d_loss"]["step"], [100, 200, 300, 400])
    np.testing.assert_array_equal(got["d_loss"]["value"], [1.0, 0.25, 0.75, 0.5])
    args = cli.parse_flags(
        ["gan-jax", "curve", f"--workdir={tmp_path}", "--metrics= kl, d_loss,"]
        + [f"--out={tmp_path / 'c.png'}"]
    )
    args.run(args)

    def refuse(constant):
        raise ValueError(f"{constant} is not strict JSON")

    record = json.loads(capsys.readouterr().out, parse_constant=refuse)
    assert record["runs"][0]["kl"]["lowest"] == {"step": 200, "value": 1.5}
    assert record["runs"][0]["kl"]["highest"] == {"step": 400, "value": 2.0}
    (tmp_path / "metrics.jsonl").write_text(lines[0] + "\n" + lines[2] + "\n")
    with pytest.raises(ValueError, match=r"metric 'kl' has no finite value in .* \(2 rows\)"):
        curves.read_curves(str(tmp_path), ["kl"])
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines[:2] + ["{oops"] + lines[2:4]))
    with pytest.raises(ValueError, match=r"metrics.jsonl line 3 is not a JSON record"):
        curves.read_curves(str(tmp_path), ["kl"])


def test_a_sweep_directory_or_a_member_without_a_log_is_named_on_the_command_line(tmp_path):
    (tmp_path / "members" / "0").mkdir(parents=True)
    (tmp_path / "members" / "0" / "config.json").write_text("{}")
    out = str(tmp_path / "c.png")
    with pytest.raises(ValueError, match=r"a sweep's directory: pass its members, --workdir .*"):
        curves.curve([str(tmp_path)], ["d_loss"], out)
    args = cli.parse_flags(
        ["gan-jax", "curve", f"--workdir={tmp_path}/members/0", "--metrics=d_loss", f"--out={out}"]
    )
    with pytest.raises(SystemExit, match=r"members/0 has logged no step yet"):
        cli.main(args)
    (tmp_path / "out.png").mkdir()
    with pytest.raises(ValueError, match=r"--out .*out.png' is a directory"):
        curves.curve([str(tmp_path)], ["d_loss"], str(tmp_path / "out.png"))


def test_log_y_names_the_run_metric_step_and_value_it_cannot_draw(workdir):
    rows = [{"step": 100, "d_loss": 1.0}, {"step": 300, "d_loss": -0.5}]
    (workdir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(ValueError, match=r"d_loss = -0.5 at step 300 of .*: log_y needs"):
        curves.curve([str(workdir)], ["d_loss"], str(workdir / "c.png"), log_y=True)


def test_many_runs_share_one_legend_entry_and_few_are_named_by_their_own_folder(
    monkeypatch, tmp_path
):
    legends = []
    save = plotting._save

    def keep_legends(fig, path):
        legends.extend(sorted(t.get_text() for t in ax.get_legend().get_texts()) for ax in fig.axes)
        save(fig, path)

    monkeypatch.setattr(plotting, "_save", keep_legends)
    assert curves.run_labels(["/s/members/0", "/s/members/10/"]) == ["members/0", "members/10"]
    assert curves.run_labels(["a/b"]) == ["a/b"]
    x = np.arange(3)
    band = (x, x * 1.0, x * 0.0)
    for runs in (3, 16):
        lines = [(f"members/{i}", x, x * 1.0, None) for i in range(runs)]
        plotting.save_curves(str(tmp_path / f"{runs}.png"), {"kl": (lines, band)}, "step")
    assert legends[0] == ["mean of 3", "members/0", "members/1", "members/2"]
    assert legends[1] == ["each of 16 runs", "mean of 16"]  # 16 colours would repeat, too


def test_of_a_step_logged_twice_the_later_row_counts_even_when_it_is_not_finite(tmp_path):
    rows = [
        {"step": 100, "kl": 1.0},
        {"step": 200, "kl": 2.5},
        {"step": 200, "kl": None},  # the rewrite of step 200: its figure is unknown, not 2.5
        {"step": 300, "kl": 3.0},
        {"step": 300, "d_loss": 0.5},  # a row without the metric rewrites nothing of it
    ]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    got = curves.read_curves(str(tmp_path), ["kl"])["kl"]
    np.testing.assert_array_equal(got["step"], [100, 300])
    np.testing.assert_array_equal(got["value"], [1.0, 3.0])
