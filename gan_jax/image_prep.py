"""Pixel preprocessing shared by every image source: center crop to a square and resize, and
conversion between 1 and 3 channels. Everything stays uint8 [.., H, W, C]; scaling to floats
happens on the way to the device (`data.scale_images`)."""

from __future__ import annotations

import numpy as np
from PIL import Image

CHANNELS = (1, 3)
# PIL modes whose pixels are gray levels (a folder of only these loads with one channel).
GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"})
# ITU-R 601-2 luma in 16-bit fixed point, as PIL's RGB -> L conversion computes it, so that an
# array source and a folder of the same pixels convert alike.
_LUMA_16 = np.array([19595, 38470, 7471], np.uint32)


def center_crop_resize(image: Image.Image, image_size: int) -> Image.Image:
    """The central min(H, W) square of `image`, resized to image_size x image_size with PIL's
    bilinear filter (which averages over the source footprint when shrinking). The usual way to
    make CelebA 64x64 (Radford et al. 2016's DCGAN code crops the face centre, then resizes)."""
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    square = image.crop((left, top, left + side, top + side))
    if side == image_size:
        return square
    return square.resize((image_size, image_size), Image.BILINEAR)


def prepare_image(image: Image.Image, image_size: int | None) -> np.ndarray:
    """A decoded image as uint8 [H, W] (mode 'L') or [H, W, 3] ('RGB'), cropped and resized
    when `image_size` is set."""
    if image_size is not None:
        image = center_crop_resize(image, image_size)
    return np.asarray(image, np.uint8)


def resize_array(image_HxWxC: np.ndarray, image_size: int) -> np.ndarray:
    """`center_crop_resize` of one uint8 array image [H, W] or [H, W, C] (C in 1, 3), same rank."""
    squeeze = image_HxWxC.ndim == 3 and image_HxWxC.shape[-1] == 1
    pil = Image.fromarray(image_HxWxC[..., 0] if squeeze else image_HxWxC)
    out = np.asarray(center_crop_resize(pil, image_size), np.uint8)
    return out[..., None] if squeeze else out


def resize_images(images_NxHxWxC: np.ndarray, image_size: int | None) -> np.ndarray:
    """`resize_array` of every image (a no-op when `image_size` is None)."""
    if image_size is None:
        return images_NxHxWxC
    return np.stack([resize_array(x, image_size) for x in images_NxHxWxC])


def to_channels(images_NxHxWxC: np.ndarray, channels: int | None) -> np.ndarray:
    """uint8 images with `channels` channels: gray repeated into RGB, RGB to gray by ITU-R
    601-2 luma (L = 0.299 R + 0.587 G + 0.114 B, rounded as PIL rounds); None keeps them."""
    have = images_NxHxWxC.shape[-1]
    if channels is None or channels == have:
        return images_NxHxWxC
    if channels == 3 and have == 1:
        return np.repeat(images_NxHxWxC, 3, axis=-1)
    if channels == 1 and have == 3:
        luma = (images_NxHxWxC.astype(np.uint32) @ _LUMA_16 + 0x8000) >> 16
        return luma.astype(np.uint8)[..., None]
    raise ValueError(f"cannot convert {have} channels to {channels}; allowed: {CHANNELS}")
