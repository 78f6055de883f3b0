"""The experiment scripts' references into gan_jax resolve.

The scripts under experiments/ are run by hand (their figures go in the README), so a renamed or
moved function breaks them silently: `eval_table.py` called `evaluate.default_config` for a
while after it moved. This reads each script's `from gan_jax import m` imports and checks that
every `m.name` it uses exists, without running the script.
"""

import ast
import importlib

import pytest
from experiments_loader import EXPERIMENTS


def gan_jax_references(path):
    """(module alias, module, attribute, line) for each `alias.attribute` in the file whose alias
    is bound by `from gan_jax import module [as alias]`."""
    tree = ast.parse(path.read_text())
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "gan_jax":
            for name in node.names:
                aliases[name.asname or name.name] = f"gan_jax.{name.name}"
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
        ):
            yield node.value.id, aliases[node.value.id], node.attr, node.lineno


SCRIPTS = sorted(EXPERIMENTS.glob("*.py"))


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_every_gan_jax_name_an_experiment_uses_exists(path):
    missing = [
        f"{path.name}:{line}: {alias}.{attr} ({module} has no {attr!r})"
        for alias, module, attr, line in gan_jax_references(path)
        if not hasattr(importlib.import_module(module), attr)
    ]
    assert not missing, missing


def test_the_check_sees_a_missing_name(tmp_path):
    script = tmp_path / "broken.py"
    script.write_text("from gan_jax import evaluate\n\nevaluate.default_config()\n")
    (reference,) = gan_jax_references(script)
    assert reference == ("evaluate", "gan_jax.evaluate", "default_config", 3)
    assert not hasattr(importlib.import_module(reference[1]), reference[2])
