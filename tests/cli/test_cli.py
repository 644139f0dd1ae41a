"""The CLI: the happy paths, and every bad input as one line on stderr, exit 2, nothing written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from distdream.cli import main
from distdream.images import load_image, save_image
from distdream.samples import write_clip

FAST = ["--num-iterations", "2", "--num-octaves", "2", "--dream-layers", "_blocks.5", "-q"]


pytestmark = pytest.mark.usefixtures("local_ray")


@pytest.fixture()
def photo(tmp_path: Path, small_photo: np.ndarray) -> Path:
    return save_image(small_photo, tmp_path / "photo.png")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_dream_writes_a_dreamed_image(capsys, tmp_path: Path, photo: Path, small_photo: np.ndarray) -> None:
    out = tmp_path / "out.png"
    code, stdout, _ = run(capsys, "dream", str(photo), "-o", str(out), *FAST, "--channels", "_blocks.5=1,2")
    assert code == 0, stdout
    assert "wrote" in stdout and "128×96" in stdout
    result = load_image(out)
    assert result.shape == small_photo.shape and not np.array_equal(result, small_photo)


def test_every_config_flag_reaches_the_config(capsys, tmp_path: Path, photo: Path) -> None:
    from distdream.cli import dream
    from distdream.cli.options import dream_config

    argv = [
        str(photo),
        "-o",
        "x.png",
        "--model",
        "resnet18",
        "--weights",
        "none",
        "--learning-rate",
        "0.5",
        "--num-iterations",
        "3",
        "--num-octaves",
        "2",
        "--octave-scale",
        "1.3",
        "--dream-layers",
        "layer2,layer3",
        "--channels",
        "layer2=1,2",
        "--channels",
        "5",
        "--predefined-start",
        str(photo),
        "--seed",
        "9",
        "--jitter",
        "4",
        "--tile-size",
        "none",
        "--precision",
        "bf16",
        "--no-channels-last",
        "--compile",
    ]
    cfg = dream_config(dream.make_context("dream", argv).params)
    assert (cfg.precision, cfg.channels_last, cfg.compile) == ("bf16", False, True)
    assert (cfg.model, cfg.weights, cfg.learning_rate, cfg.num_iterations, cfg.num_octaves) == (
        "resnet18",
        None,
        0.5,
        3,
        2,
    )
    assert cfg.octave_scale == 1.3 and cfg.dream_layers == ("layer2", "layer3") and cfg.seed == 9
    assert cfg.channels_for("layer2") == (1, 2) and cfg.channels_for("layer3") == (5,)
    assert cfg.predefined_start == str(photo) and cfg.jitter == 4 and cfg.tile_size is None


def test_no_flags_give_the_records_defaults() -> None:
    # what a plain `distdream render in.mp4 -o out.mp4` dreams with: exactly the library's defaults
    from distdream.cli import dream, render
    from distdream.cli.options import dream_config, job_options, render_config
    from distdream.config import DreamConfig, RenderConfig
    from distdream.options import JobOptions

    kw = render.make_context("render", ["in.mp4", "-o", "out.mp4"]).params
    assert render_config(kw) == RenderConfig() and JobOptions(**job_options(kw)) == JobOptions()
    assert dream_config(dream.make_context("dream", ["in.png", "-o", "out.png"]).params) == DreamConfig()


def test_every_declared_setting_is_a_flag_that_reaches_its_record() -> None:
    # a setting is declared once (distdream.declare.setting); its flag, config-file key and value follow
    from distdream.cli import render
    from distdream.cli.options import job_options, render_config
    from distdream.config import DreamConfig, Encoding, FlowConfig, RenderConfig
    from distdream.declare import declared, flag_of
    from distdream.options import JobOptions

    params = {p.name: p for p in render.params}
    argv, want = ["in.mp4", "-o", "out.mp4"], {}
    for cls in (DreamConfig, FlowConfig, RenderConfig, Encoding, JobOptions):
        for f, decl in declared(cls):
            key = decl.key or f.name
            assert (key in params) == decl.cli, key
            if not decl.cli:
                continue
            assert flag_of(f, decl) in params[key].opts and params[key].help.startswith(decl.help), key
            # a value its rule admits that is not the default, typed as a user would
            candidates = {int: (7, 3), float: (0.75, 1.5)}.get(type(f.default), ())
            value = next((v for v in candidates if v != f.default and (decl.rule is None or decl.rule.test(v))), None)
            if isinstance(f.default, bool):
                argv.append(flag_of(f, decl) if not f.default else "--no-" + flag_of(f, decl)[2:])
                want[(cls, f.name)] = not f.default
            elif value is not None and decl.parse is None and not (decl.rule and decl.rule.choices):
                argv += [flag_of(f, decl), str(value)]
                want[(cls, f.name)] = value
    kw = render.make_context("render", argv).params
    records = {
        DreamConfig: render_config(kw).dream,
        FlowConfig: render_config(kw).flow,
        RenderConfig: render_config(kw),
        Encoding: render_config(kw).encoding,
        JobOptions: JobOptions(**job_options(kw)),
    }
    assert len(want) >= 15  # every number and switch with a default
    for (cls, name), value in want.items():
        assert getattr(records[cls], name) == value, (cls.__name__, name)


def bad_inputs(tmp: Path, photo: Path) -> list[tuple[list[str], str]]:
    text = tmp / "notes.png"
    text.write_text("not an image")
    return [
        (["dream", str(tmp / "missing.png")], "does not exist"),
        (["dream", str(text)], "not an image"),
        (["dream", str(photo), "--model", "nosuchnet"], "unknown model"),
        (["dream", str(photo), "--dream-layers", "_blocks.99"], "unknown layer"),
        (["dream", str(photo), "--dream-layers", "_blocks.5", "--channels", "999"], "out of range"),
        (["dream", str(photo), "--channels", "a,b"], "--channels"),
        (["dream", str(photo), "--num-octaves", "0"], "num_octaves"),
        (["dream", str(photo), "--num-iterations", "-1"], "num_iterations"),
        (["dream", str(photo), "--learning-rate", "0"], "learning_rate"),
        (["dream", str(photo), "--octave-scale", "1"], "octave_scale"),
        (["dream", str(photo), "--num-octaves", "two"], "not a valid integer"),
        (["dream", str(photo), "--precision", "fp8"], "--precision"),
        (["dream", str(photo), "--predefined-start", str(tmp / "nostart.png")], "predefined_start"),
        (["dream", str(photo), "--predefined-start", str(text)], "predefined_start"),
        (
            ["dream", str(photo), "--device", "cuda:7"] if not _has_cuda() else ["dream", str(photo), "--device", "x"],
            "device",
        ),
    ]


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def test_bad_inputs_fail_with_one_line_and_write_nothing(capsys, tmp_path: Path, photo: Path) -> None:
    for argv, needle in bad_inputs(tmp_path, photo):
        out = tmp_path / "out.png"
        code, _, err = run(capsys, *argv, "-o", str(out), "-q")
        assert code == 2, (argv, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (argv, err)
        assert needle in lines[0], (argv, err)
        assert not out.exists(), argv


@pytest.mark.parametrize(
    ("target", "needle"), [("missing-dir/out.png", "does not exist"), ("/proc/out.png", "not writable")]
)
def test_unwritable_output(capsys, tmp_path: Path, photo: Path, target: str, needle: str) -> None:
    path = target if target.startswith("/") else str(tmp_path / target)
    code, _, err = run(capsys, "dream", str(photo), "-o", path, *FAST)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1


def test_layers_lists_names_channels_strides_and_defaults(capsys) -> None:
    code, out, _ = run(capsys, "layers")
    assert code == 0
    rows = {line[2:].split()[0]: line for line in out.splitlines()[1:]}
    assert rows["_blocks.9"].startswith("*") and rows["_blocks.9"].split()[-2:] == ["112", "16"]
    code, out, _ = run(capsys, "layers", "resnet18", "--filter", "layer4", "--json")
    data = json.loads(out)
    assert code == 0 and data["model"] == "resnet18"
    assert all("layer4" in row["name"] for row in data["layers"]) and data["layers"]
    code, _, err = run(capsys, "layers", "nosuchnet")
    assert code == 2 and "unknown model" in err


def test_models_lists_the_offline_default_first(capsys) -> None:
    code, out, _ = run(capsys, "models")
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith("* efficientnet_lite0") and "offline" in lines[0]
    assert any(line.split()[-1] == "vgg19" for line in lines)


def test_console_script_is_installed() -> None:
    exe = Path(sys.executable).with_name("distdream")  # pip puts scripts beside the interpreter
    assert exe.exists(), "the `distdream` console script is not installed"
    proc = subprocess.run([str(exe), "dream", "/nonexistent.png", "-o", "/tmp/x.png"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: image /nonexistent.png does not exist"
    assert "Traceback" not in proc.stderr


def test_probe_summary_json_and_bad_files(capsys, tmp_path: Path) -> None:
    from tests.media import pan_frames

    clip = write_clip(tmp_path / "clip.mkv", pan_frames(20, 161, 121), audio="aac")
    code, out, _ = run(capsys, "probe", str(clip))
    assert code == 0
    assert "161×121" in out and "20 frames" in out and "aac" in out and "constant rate" in out
    code, out, _ = run(capsys, "probe", str(clip), "--json")
    data = json.loads(out)
    assert code == 0 and data["frame_count"] == 20 and data["width"] == 161
    text = tmp_path / "notes.mp4"
    text.write_text("hello")
    for bad, needle in [(tmp_path / "nope.mp4", "does not exist"), (text, "not a readable video")]:
        code, _, err = run(capsys, "probe", str(bad))
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1


def test_render_and_metrics(capsys, tmp_path: Path) -> None:
    from distdream.video import probe
    from tests.media import pan_frames

    clip = write_clip(tmp_path / "clip.mp4", pan_frames(30, 96, 64)[:8], audio="aac")
    out = tmp_path / "out.mp4"
    code, stdout, err = run(
        capsys,
        "render",
        str(clip),
        "-o",
        str(out),
        *FAST,
        "--keyframe-iterations",
        "3",
        "--frame-iterations",
        "1",
        "--decay",
        "0.8",
        "--flow",
        "farneback",
        "--flow-scale",
        "0.7",
        "--crf",
        "20",
        "--preset",
        "veryfast",
    )
    assert code == 0, err
    assert "8 frames" in stdout and "1 chunks" in stdout
    assert probe(out).frame_count == 8 and probe(out).audio
    code, stdout, _ = run(capsys, "metrics", str(clip), str(out), "--json")
    figures = json.loads(stdout)
    assert code == 0 and figures["mean"] > 0 and len(figures["per_frame"]) == 8
    assert len(figures["detail"]) == 8 and min(figures["detail"]) > 0  # the dream has fine structure
    code, stdout, _ = run(capsys, "metrics", str(clip), str(out))
    assert code == 0 and "warping error" in stdout and "ratio" in stdout and "detail" in stdout


def test_render_bad_inputs(capsys, tmp_path: Path) -> None:
    from tests.media import pan_frames

    clip = write_clip(tmp_path / "clip.mp4", pan_frames(3, 64, 48), audio=None)
    cases = [
        (["--flow-scale", "0"], "flow_scale"),
        (["--flow-scale", "1.5"], "flow_scale"),
        (["--flow", "lucas"], "--flow"),
        (["--decay", "2"], "decay"),
        (["--frame-iterations", "-3"], "frame_iterations"),
        (["--crf", "99"], "crf"),
    ]
    for extra, needle in cases:
        out = tmp_path / "out.mp4"
        code, _, err = run(capsys, "render", str(clip), "-o", str(out), "-q", *extra)
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, (extra, err)
        assert not out.exists()
    code, _, err = run(capsys, "render", str(tmp_path / "none.mp4"), "-o", str(tmp_path / "o.mp4"), "-q")
    assert code == 2 and "does not exist" in err
    code, _, err = run(capsys, "metrics", str(clip), str(tmp_path / "none.mp4"))
    assert code == 2 and "does not exist" in err


def test_render_from_a_toml_config_with_flags_overriding(capsys, tmp_path: Path) -> None:
    from distdream.video import probe
    from tests.media import pan_frames

    clip = write_clip(tmp_path / "clip.mp4", pan_frames(40, 64, 48)[:20], audio=None)
    config = tmp_path / "job.toml"
    config.write_text(
        f'input = "{clip}"\noutput = "{tmp_path / "from_file.mp4"}"\n'
        '[dream]\ndream_layers = ["_blocks.5"]\nnum_iterations = 2\nnum_octaves = 1\n'
        'precision = "bf16"\nchannels_last = false\ncompile = false\n'
        "[job]\nchunk_frames = 8\noverlap = 2\nworkers = 1\nlanes = 2\nframes = [2, 18]\n"
    )
    code, stdout, err = run(capsys, "render", "--config", str(config), "-q", "-o", str(tmp_path / "flag.mp4"))
    assert code == 0, err
    assert "16 frames" in stdout and "2 chunks" in stdout  # frames 2:18 in chunks of 8 (from the file)
    assert "1 worker(s) × 2 lane(s) on Ray, network in fp32, NCHW" in stdout  # the module runs on Ray
    assert "precision bf16 runs on CUDA only" in err  # said once, not per chunk
    assert (tmp_path / "flag.mp4").exists() and not (tmp_path / "from_file.mp4").exists()  # -o overrides
    assert probe(tmp_path / "flag.mp4").frame_count == 16
    config.write_text("nonsense_setting = 3\n")
    code, _, err = run(capsys, "render", "--config", str(config), str(clip), "-o", str(tmp_path / "x.mp4"))
    assert code == 2 and "nonsense_setting" in err
    code, _, err = run(capsys, "render", str(clip), "-o", str(tmp_path / "x.mp4"), "--frames", "5-9")
    assert code == 2 and "--frames" in err
    code, _, err = run(capsys, "render", str(clip), "-o", str(tmp_path / "x.mp4"), "--lanes", "0")
    assert code == 2 and "lanes" in err and not (tmp_path / "x.mp4").exists()


def test_example_batch_toml_names_only_real_options() -> None:
    import tomllib

    from distdream.cli import render

    data = tomllib.loads((Path(__file__).parents[2] / "examples" / "batch.toml").read_text())
    keys = {k for key, v in data.items() for k in (v if isinstance(v, dict) else {key: v})}
    assert keys <= {p.name for p in render.params}, keys - {p.name for p in render.params}


def test_example_batch_toml_renders(capsys, tmp_path: Path) -> None:
    from distdream.video import probe
    from tests.media import pan_frames

    clip = write_clip(tmp_path / "clip.mp4", pan_frames(24, 96, 64), audio="aac")
    batch = Path(__file__).parents[2] / "examples" / "batch.toml"
    out = tmp_path / "out.mp4"
    # the file's settings, with input, output, work directory and a cheaper dream given as flags
    code, stdout, err = run(
        capsys,
        "render",
        "--config",
        str(batch),
        str(clip),
        "-o",
        str(out),
        "--workdir",
        str(tmp_path / "work"),
        "--num-iterations",
        "1",
        "--num-octaves",
        "1",
        "--keyframe-iterations",
        "1",
        "--frame-iterations",
        "1",
        "--chunk-frames",
        "12",
        "--overlap",
        "2",
        "-q",
    )
    assert code == 0, err
    assert probe(out).frame_count == 24 and "2 chunks" in stdout


@pytest.mark.parametrize(
    ("toml", "flags", "needle"),
    [
        ("chunk_frames = true", [], "chunk_frames (--chunk-frames) is True; it must be an integer >= 1"),
        ("chunk_frames = 2.9", [], "chunk_frames (--chunk-frames) is 2.9; it must be an integer >= 1"),
        ("workers = [1, 2]", [], "workers (--workers) is [1, 2]; it must be an integer >= 1"),
        ('workdir = ""', [], "workdir (--workdir) is ''; it must be a directory path"),
        ('resume = "yes"', [], "resume (--resume) is 'yes'; it must be true or false"),
        ('unsafe_lock = "gs"', [], "unsafe_lock (--unsafe-lock) is 'gs'; it must be a list of storage protocol names"),
        ("dream_layers = 5", [], "dream_layers is 5 in the config file"),
        ("", ["--seed", "20000000000000"], "seed (--seed) is 20000000000000; it must be an integer in 0–4294967295"),
        ("", ["--workdir", "memory://w"], "work directory memory://w: memory:// lives in one process's memory"),
        ("", ["--workdir", ""], "workdir (--workdir) is ''; it must be a directory path"),
        ("", ["-o", "memory://out.mp4"], "output memory://out.mp4: memory:// lives in one process's memory"),
        (
            "",
            ["--address", "localhost:99999"],
            "address (--address) is 'localhost:99999'; it must be auto, or HOST:PORT",
        ),
        ("", ["--chunk-timeout", "0"], "chunk_timeout (--chunk-timeout) is 0.0; it must be a finite number > 0"),
        ("input = 5", [], 'input is 5 in the config file; it must be text, e.g. "clip.mp4"'),
        ("output = true", [], 'output is True in the config file; it must be text, e.g. "clip.mp4"'),
        ('quiet = "no"', [], "quiet is 'no' in the config file; it must be true or false"),
        ("", ["--address", "host:²"], "address (--address) is 'host:²'; it must be auto, or HOST:PORT"),
    ],
)
def test_settings_are_typed_as_declared_and_node_local_paths_refused(
    capsys, tmp_path: Path, toml: str, flags: list[str], needle: str
) -> None:
    """A TOML value of the wrong type is an error, not converted; paths every node must see are
    checked before anything starts: one line, exit 2, nothing written."""
    from tests.media import pan_frames

    clip = write_clip(tmp_path / "clip.mp4", pan_frames(3, 64, 48), audio=None)
    config = tmp_path / "job.toml"
    config.write_text(toml + "\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    argv = ["render", str(clip), "--config", str(config), *with_output(flags, tmp_path), "-q"]
    code, _, err = run(capsys, *argv)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def with_output(flags: list[str], tmp_path: Path) -> list[str]:
    """The flags, with an output in ``tmp_path`` unless they name one."""
    return flags if "-o" in flags else ["-o", str(tmp_path / "out.mp4"), *flags]


@pytest.mark.parametrize(
    ("flags", "what"),
    [
        (["INPUT"], "INPUT clip.mp4"),
        (["--predefined-start", "start.png"], "--predefined-start start.png"),
        (["--weights", "my/weights.pt"], "--weights my/weights.pt"),
    ],
)
def test_submit_refuses_a_relative_path_the_cluster_would_read_elsewhere(
    capsys, tmp_path: Path, flags: list[str], what: str
) -> None:
    """The render runs in the cluster's working directory: refused here, before any request."""
    given = "clip.mp4" if flags == ["INPUT"] else str(tmp_path / "clip.mp4")
    extra = [] if flags == ["INPUT"] else flags
    code, _, err = run(
        capsys, "submit", given, "-o", str(tmp_path / "o.mp4"), *extra, "--address", "http://127.0.0.1:9"
    )
    assert code == 2 and f"{what} is relative" in err and "absolute path every node sees" in err, err


def test_a_job_opens_its_files_by_absolute_path_whatever_the_workers_directory(
    tmp_path: Path, monkeypatch, small_photo
) -> None:
    """engine.submit makes the start image and a weights file absolute, as it does the input and
    output: a Ray worker on another node has another working directory."""
    from dataclasses import replace

    import torch

    from distdream.config import DreamConfig, RenderConfig
    from distdream.engine import submit
    from distdream.models import load_model

    monkeypatch.chdir(tmp_path)
    write_clip(tmp_path / "clip.mp4", [small_photo[:48, :64]] * 3, audio=None)
    save_image(small_photo, "start.png")
    torch.save(load_model("efficientnet_lite0").module.state_dict(), "lite0.pt")
    dream = DreamConfig(num_iterations=1, num_octaves=1, dream_layers=("_blocks.3",), predefined_start="start.png")
    job = submit("clip.mp4", "out.mp4", RenderConfig(dream=replace(dream, weights="lite0.pt")), ray="never")
    job.result(timeout=300)
    assert job.config.dream.predefined_start == str(tmp_path / "start.png")
    assert job.config.dream.weights == str(tmp_path / "lite0.pt")
