"""Image files: clear errors for bad inputs and outputs, atomic writes, exact conversions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from distdream.errors import InputError, OutputError
from distdream.images import array_to_tensor, load_image, save_image, tensor_to_array
from distdream.storage import check_writable


def test_round_trip_png_is_exact(tmp_path: Path, small_photo: np.ndarray) -> None:
    out = save_image(small_photo, tmp_path / "a.png")
    assert np.array_equal(load_image(out), small_photo)
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]  # no temp or probe file left behind


def test_tensor_conversion_round_trips(small_photo: np.ndarray) -> None:
    t = array_to_tensor(small_photo)
    assert t.shape == (1, 3, *small_photo.shape[:2]) and float(t.max()) <= 1.0
    assert np.array_equal(tensor_to_array(t), small_photo)


def test_missing_and_non_image_inputs(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_image(tmp_path / "nope.png")
    fake = tmp_path / "fake.png"
    fake.write_text("this is not a picture")
    with pytest.raises(InputError, match="not an image"):
        load_image(fake)
    with pytest.raises(InputError, match="not a file"):
        load_image(tmp_path)


def test_unwritable_outputs(tmp_path: Path, small_photo: np.ndarray) -> None:
    with pytest.raises(OutputError, match="does not exist"):
        check_writable(tmp_path / "missing" / "x.png")
    with pytest.raises(OutputError, match="not writable"):
        check_writable("/proc/distdream-test.png")  # procfs refuses new files, even to root
    with pytest.raises(OutputError, match="is a directory"):
        check_writable(tmp_path)
    with pytest.raises(OutputError, match="extension"):
        save_image(small_photo, tmp_path / "x.unknownext")
    assert list(tmp_path.iterdir()) == []


def test_failed_write_leaves_previous_file_intact(tmp_path: Path, small_photo: np.ndarray) -> None:
    target = save_image(small_photo, tmp_path / "keep.png")
    before = target.read_bytes()
    with pytest.raises(TypeError):
        save_image(np.zeros((4, 4, 7), np.uint8), target)  # 7 channels: Pillow cannot encode it
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.png"]
