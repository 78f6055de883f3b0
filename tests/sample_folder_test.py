"""`gan-jax sample --out DIR/` for an RGB image set: the folder is what clean-fid and
pytorch-fid read (a flat folder of same-size PNGs that their globs list in sample order and
their loaders, `Image.open(path).convert('RGB')`, decode to the samples' 8-bit pixels)."""

import glob
import os

import jax
import numpy as np
from conftest import fresh_state, tiny_config
from PIL import Image

from gan_jax import sample
from gan_jax import workdir as workdir_lib
from gan_jax.checkpoint import Checkpointer

TOOL_EXTENSIONS = ("bmp", "jpg", "jpeg", "pgm", "png", "ppm", "tif", "tiff", "webp")


def test_sample_folder_of_an_rgb_image_set_is_what_fid_tools_read(tmp_path):
    np.savez(tmp_path / "set.npz", x=np.zeros((4, 8, 8, 3), np.uint8))
    config = tiny_config()
    config.data.update(name="npz", dir=str(tmp_path / "set.npz"), scale="symmetric")
    config.data.cache_dir = str(tmp_path / "cache")
    config.model.generator_kwargs = {"hidden": (16,), "output_activation": "tanh"}
    state = fresh_state(config)  # G's weights scaled up so that tanh spans [-1, 1]
    state = state.replace(g=state.g.replace(params=jax.tree.map(lambda p: 20 * p, state.g.params)))
    workdir = str(tmp_path / "run")
    workdir_lib.write_config(config, workdir)
    Checkpointer(os.path.join(workdir, "checkpoints")).save(state)

    sample.sample(workdir, 12, 3, str(tmp_path / "s.npz"))
    x = np.load(tmp_path / "s.npz")["x"]
    assert x.shape == (12, 8, 8, 3) and x.min() < -0.9 and x.max() > 0.9
    folder = str(tmp_path / "fid") + "/"
    assert sample.sample(workdir, 12, 3, folder)["format"] == "png"

    assert sorted(os.listdir(folder)) == [f"{i:02d}.png" for i in range(12)]  # nothing else
    # pytorch-fid lists `*.<ext>` in the folder, clean-fid `**/*.<ext>` recursively; both sort.
    flat = sorted(f for ext in TOOL_EXTENSIONS for f in glob.glob(os.path.join(folder, f"*.{ext}")))
    deep = sorted(
        f
        for ext in TOOL_EXTENSIONS
        for f in glob.glob(os.path.join(folder, f"**/*.{ext}"), recursive=True)
    )
    assert flat == deep and len(flat) == 12
    pixels = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in flat])
    np.testing.assert_array_equal(pixels, np.round((x + 1.0) / 2.0 * 255.0).astype(np.uint8))
