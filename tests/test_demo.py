"""The demo makes a real video and a real contact sheet; the preview makes a real grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from distdream.config import DreamConfig, Encoding
from distdream.demo import run_demo
from distdream.errors import ConfigError
from distdream.images import save_image
from distdream.preview import parse_vary, preview
from distdream.samples import pan_frames, sample_photo, write_clip
from distdream.sheets import grid
from distdream.video import probe

FAST = DreamConfig(num_iterations=2, num_octaves=2, dream_layers=("_blocks.5",))


pytestmark = pytest.mark.usefixtures("local_ray")


def test_demo_writes_video_and_contact_sheet(tmp_path: Path) -> None:
    from distdream.config import RenderConfig

    result = run_demo(
        tmp_path / "demo.mp4",
        frames=16,
        width=96,
        height=64,
        config=RenderConfig(dream=FAST, encoding=Encoding(preset="veryfast")),
    )
    video = probe(result.video)
    assert video.frame_count == 16 and video.audio and result.job.chunks >= 2
    sheet = Image.open(result.sheet)
    # 4 rows of (input | dream), each tile 96×64 under a 22 px caption, 4 px gaps
    assert sheet.size == (2 * 96 + 3 * 4, 4 * (64 + 22) + 5 * 4)
    pixels = np.asarray(sheet)
    left, right = pixels[30:90, 4:100], pixels[30:90, 104:200]  # first row: input vs dream
    assert np.abs(left.astype(int) - right).mean() > 5


def test_demo_refuses_an_object_storage_output_before_any_work(tmp_path: Path) -> None:
    from distdream.demo import run_demo
    from distdream.errors import OutputError

    with pytest.raises(OutputError, match="give a local path"):
        run_demo("s3://bucket/demo.mp4")


def test_grid_layout() -> None:
    tiles = [np.full((10, 20, 3), k * 40, np.uint8) for k in range(5)]
    out = grid(tiles, [f"t{k}" for k in range(5)], columns=2)
    assert out.shape == (3 * (10 + 22) + 4 * 4, 2 * 20 + 3 * 4, 3)
    with pytest.raises(ValueError):
        grid(tiles, ["too few"])


def test_preview_atlas_one_tile_per_layer(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "clip.mp4", list(pan_frames(10, 160, 90)), audio=None)
    cfg = DreamConfig(num_iterations=2, num_octaves=2, dream_layers=("_blocks.3", "_blocks.5", "_blocks.8"))
    path = preview(clip, tmp_path / "atlas.png", cfg, frame=4, size=80)
    atlas = Image.open(path)
    assert atlas.size == (2 * 80 + 3 * 4, 2 * (45 + 22) + 3 * 4)  # 3 tiles in a 2×2 grid, 80×45 each
    tiles = np.asarray(atlas)
    first, second = tiles[4 + 22 : 4 + 67, 4:84], tiles[4 + 22 : 4 + 67, 88:168]
    assert np.abs(first.astype(int) - second).mean() > 2  # different layers dream differently


def test_preview_varies_one_setting_on_an_image(tmp_path: Path) -> None:
    image = save_image(sample_photo("coffee"), tmp_path / "coffee.png")
    path = preview(image, tmp_path / "vary.png", FAST, vary=parse_vary("learning_rate=0.01,0.05"), size=64)
    assert Image.open(path).size == (2 * 64 + 3 * 4, 43 + 22 + 2 * 4)
    assert parse_vary("num-octaves=1,3") == ("num_octaves", [1, 3])
    with pytest.raises(ConfigError, match="not a setting"):
        parse_vary("colour=red")
    with pytest.raises(ConfigError, match="ints"):
        parse_vary("num_octaves=a,b")
    with pytest.raises(ConfigError, match="outside"):
        clip = write_clip(tmp_path / "c.mp4", list(pan_frames(3, 64, 48)), audio=None)
        preview(clip, tmp_path / "x.png", FAST, frame=7)
