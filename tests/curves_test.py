"""gan_jax.curves and `gan-jax curve`: logged metrics against steps, their extremes, the PNG."""

import json

import numpy as np
import pytest
from PIL import Image

from gan_jax import cli, curves

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
    with pytest.raises(ValueError, match="no workdir"):
        curves.curve([], ["d_loss"], out)
    with pytest.raises(ValueError, match="no metric named"):
        curves.curve([str(workdir)], [], out)
    (workdir / "metrics.jsonl").write_text(json.dumps({"step": 1, "g_loss": -1.0}) + "\n")
    with pytest.raises(ValueError, match="log_y needs values > 0"):
        curves.curve([str(workdir)], ["g_loss"], out, log_y=True)
    with pytest.raises(FileNotFoundError, match="must be a training workdir"):
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
        "runs": 2,
    }
    with Image.open(out) as image:
        assert image.format == "PNG"
    (second / "metrics.jsonl").write_text(json.dumps({"step": 100, "parzen_ll": 1.0}) + "\n")
    with pytest.raises(ValueError, match="'parzen_ll': no step is logged by all of"):
        curves.curve([str(workdir), str(second)], ["parzen_ll"], str(second / "none.png"))
    assert not (second / "none.png").exists()
