"""experiments/eval_table.py's real-data row runs against the reference inputs eval prepares.

evaluate.reference_inputs also returns the test labels for D's classifier error; the row once
passed them on to metrics.compute_metrics, which has no such input, and the script failed
after scoring every GAN row.
"""

import importlib.util

from experiments_loader import EXPERIMENTS

SPEC = importlib.util.spec_from_file_location("eval_table", EXPERIMENTS / "eval_table.py")
eval_table = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(eval_table)


def test_real_data_row_scores_training_images_as_samples(mnist_dir):
    record = eval_table.real_data_row(mnist_dir, num_images=200, names=("classes",))
    assert record["classes_covered"] == 10
    assert 0.0 <= record["classes_kl"] < 0.1
