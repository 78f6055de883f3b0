"""experiments/gan2014_full_length.py: its variants, its table and its flags."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

PATH = Path(__file__).resolve().parents[1] / "experiments" / "gan2014_full_length.py"
SPEC = importlib.util.spec_from_file_location("gan2014_full_length", PATH)
full = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(full)
BASE = Path(__file__).resolve().parents[1] / "experiments" / "gan2014_mnist.py"


def changed_keys(config, base) -> list[str]:
    return sorted(
        f"{section}.{key}"
        for section, values in config.items()
        if isinstance(values, dict)
        for key, value in values.items()
        if value != base[section][key]
    )


def test_variants_are_the_2014_config_with_evals_and_the_authors_own_keys():
    base = full.load_experiment_file(str(BASE)).to_dict()
    paper = full.get_config("paper", 10_000)
    evals = ["eval.every", "eval.metrics", "eval.num_samples", "train.checkpoint_every"]
    evals.append("train.num_steps")
    assert changed_keys(paper.to_dict(), base) == sorted(evals)
    assert (paper.eval.every, paper.eval.metrics, paper.eval.num_samples) == (5000, "parzen", 10000)
    assert paper.train.num_steps == 10_000 and (paper.data.start, paper.data.stop) == (0, 50000)
    authors = full.get_config("authors").to_dict()
    assert changed_keys(authors, paper.to_dict()) == [
        "loss.d_objective_scale",
        "model.z_dist",
        "train.num_steps",
        "train.update_rule",
    ]
    assert authors["model"]["z_dist"] == "normal" and authors["train"]["num_steps"] == 125_000
    simultaneous = full.get_config("simultaneous", 10_000).to_dict()
    assert changed_keys(simultaneous, paper.to_dict()) == ["train.update_rule"]
    with pytest.raises(ValueError, match="variant 'nope' is not allowed"):
        full.get_config("nope")
    with pytest.raises(ValueError, match="steps = 7000 is not allowed; expected a positive mult"):
        full.get_config("paper", 7000)


def test_rows_give_mean_std_and_range_at_the_steps_every_run_logged():
    runs = [
        {"step": np.array([5000, 10000, 15000]), "value": np.array([8.0, 60.0, 90.0])},
        {"step": np.array([5000, 10000]), "value": np.array([10.0, 50.0])},
        {"step": np.array([5000, 10000]), "value": np.array([12.0, 58.0])},
    ]
    rows = full.variant_rows("paper", full.curves.over_runs(runs))
    values = np.array([[8.0, 60.0], [10.0, 50.0], [12.0, 58.0]])
    mean, std = values.mean(0), values.std(0)
    assert rows == [
        f"| paper | 5,000 | 3 | {mean[0]:.1f} +- {std[0]:.1f} | 8.0 | 12.0 |",
        f"| paper | 10,000 | 3 | {mean[1]:.1f} +- {std[1]:.1f} | 50.0 | 60.0 |",
    ]
    runs[0]["value"] = np.array([8.0, 40.0, 90.0])  # the best mean is now the first step's
    best, final = full.best_and_final(full.curves.over_runs(runs[1:]))
    assert best == final == (10000, pytest.approx(54.0))
    best, final = full.best_and_final(full.curves.over_runs([runs[0], runs[1]]))
    assert best == final == (10000, pytest.approx(45.0))
    one = [{"step": np.array([1, 2]), "value": np.array([3.0, 1.0])}]
    best, _ = full.best_and_final(full.curves.over_runs(one))
    assert best == (1, 3.0)


def test_with_flags_name_a_variant_and_a_directory():
    assert full.parse_with(["paper=a", "authors=b", "paper=c"]) == {
        "paper": ["a", "c"],
        "authors": ["b"],
    }
    with pytest.raises(ValueError, match="--with 'paper' is not allowed; expected VARIANT=DIR"):
        full.parse_with(["paper"])
    with pytest.raises(ValueError, match="variant 'smoothing' is not one of"):
        full.parse_with(["smoothing=x"])
    # A solo run of a variant that is not run would be in no table: refused before training.
    assert full.parse_with(["paper=a"], ["paper"]) == {"paper": ["a"]}
    with pytest.raises(ValueError, match=r"variant 'authors' is not one of \('paper',\)"):
        full.parse_with(["authors=b"], ["paper"])


def test_main_asks_for_one_cpu_device_per_core_before_it_reads_the_flags(monkeypatch):
    # Like `gan-jax sweep`: without it the script's sweeps ran both seeds on one CPU device.
    calls = []
    monkeypatch.setattr(full.parallel, "one_cpu_device_per_core", lambda: calls.append(1))
    monkeypatch.setattr("sys.argv", ["gan2014_full_length.py", "--data_dir", "d", "--seeds", "0"])
    with pytest.raises(SystemExit):
        full.main()
    assert calls == [1]
