"""experiments/gan2014_collapse.py: its variants, its collapse rule and its interval."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

PATH = Path(__file__).resolve().parents[1] / "experiments" / "gan2014_collapse.py"
SPEC = importlib.util.spec_from_file_location("gan2014_collapse", PATH)
collapse = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(collapse)


def test_variants_differ_from_the_paper_in_their_own_keys_only():
    paper = collapse.get_config("paper").to_dict()
    changed = {}
    for variant in collapse.VARIANTS[1:]:
        config = collapse.get_config(variant).to_dict()
        changed[variant] = sorted(
            f"{section}.{key}"
            for section, values in config.items()
            if isinstance(values, dict)
            for key, value in values.items()
            if value != paper[section][key]
        )
    assert changed == {
        "authors": ["loss.d_objective_scale", "train.update_rule"],
        "smoothing": ["loss.real_label"],
        "half_d_lr": ["optim.d"],
        "simultaneous": ["train.update_rule"],
    }
    assert collapse.get_config("half_d_lr").optim.d.lr == 0.05
    with pytest.raises(ValueError, match="variant 'nope' is not allowed"):
        collapse.get_config("nope")


def test_a_dip_is_one_log_below_a_thousandth_a_collapse_three_in_a_row(tmp_path):
    d_fake = [0.3, 9e-4, 0.2, 8e-4, 5e-4, 9.9e-4, 0.1]

    def flags(values, status="ok"):
        rows = [{"step": 100 * (i + 1), "d_fake": v} for i, v in enumerate(values)]
        (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        return collapse.collapse_flags(str(tmp_path), status)

    assert flags(d_fake) == (True, True)
    assert flags(d_fake[:5]) == (True, False)  # two in a row: a dip, not a collapse
    assert flags([0.3, 1e-3, 0.2]) == (False, False)
    assert flags([0.3], "failed at step 200 (player D)") == (True, True)


@pytest.mark.parametrize("k", [0, 4, 16])
def test_rate_row_gives_the_clopper_pearson_interval(k):
    n = 16
    # Clopper & Pearson 1934: the alpha/2 quantile of Beta(k, n - k + 1) and the 1 - alpha/2
    # quantile of Beta(k + 1, n - k), 0 and 1 at the ends.
    low = 0.0 if k == 0 else stats.beta.ppf(0.025, k, n - k + 1)
    high = 1.0 if k == n else stats.beta.ppf(0.975, k + 1, n - k)
    flags = [True] * k + [False] * (n - k)
    row = collapse.rate_row("v", [True] * n, flags, [70.0, 80.0])
    cell = f"{k} / 16 | {k / 16:.2f} [{low:.2f}, {high:.2f}]"
    assert row == f"| v | 16 / 16 | 1.00 [0.79, 1.00] | {cell} | 75.0 +- 7.1 |"
    assert np.isclose(1 - 0.025 ** (1 / 16), 0.2059, atol=1e-4)  # k = 0's upper end, by hand


def test_a_survivors_parzen_comes_from_its_eval_json_when_that_is_for_the_final_step(
    tmp_path, monkeypatch
):
    calls = []

    def fake_evaluate(workdir, names, num_samples, data_dir):
        calls.append((workdir, names, num_samples, data_dir))
        return {"step": collapse.STEPS, "num_samples": num_samples, "parzen_ll": -1.5}

    monkeypatch.setattr(collapse.evaluate, "evaluate", fake_evaluate)
    path = tmp_path / "eval.json"
    record = {"step": collapse.STEPS, "num_samples": 10_000, "parzen_ll": 123.25}
    path.write_text(json.dumps(record))
    assert collapse.survivor_parzen(str(tmp_path), "mnist_dir") == 123.25
    assert calls == []
    for stale in ({"step": 1000}, {"num_samples": 1000}, {"parzen_ll": None}):
        path.write_text(json.dumps({**record, **stale}))
        assert collapse.survivor_parzen(str(tmp_path), "mnist_dir") == -1.5
    assert calls == [(str(tmp_path), "parzen", 10_000, "mnist_dir")] * 3
    path.unlink()
    assert collapse.survivor_parzen(str(tmp_path), "mnist_dir") == -1.5
