"""Precision, memory layout and compilation: resolved per device, CPU fallbacks, the autocast path itself."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from distdream.ascent import LayerObjective
from distdream.compute import Compute, GradientEngine, resolve_compute
from distdream.config import DreamConfig
from distdream.dream import Dreamer
from distdream.errors import ConfigError

FAST = dict(num_iterations=3, num_octaves=2, dream_layers=("_blocks.5",), jitter=4)
CPU, CUDA = torch.device("cpu"), torch.device("cuda")  # a CUDA device *name* needs no GPU


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0))


# --- what the settings mean on each device ------------------------------------------------------


def test_cpu_runs_fp32_and_says_why_when_asked_for_less() -> None:
    assert resolve_compute(DreamConfig(), CPU) == Compute("fp32", channels_last=True, compile=False)
    for wanted in ("bf16", "fp16"):
        got = resolve_compute(DreamConfig(precision=wanted), CPU)
        assert got.precision == "fp32" and got.dtype is None
        assert len(got.notes) == 1 and wanted in got.notes[0] and "CUDA" in got.notes[0]
    assert not resolve_compute(DreamConfig(channels_last=False), CPU).channels_last


def test_cuda_defaults_are_the_measured_ones_and_requests_are_kept() -> None:
    # auto = fp32 and NCHW on CUDA: on an H200 autocast gave no worthwhile speed and NHWC batches
    # ran 3–5× slower (docs/benchmarks/gpu.md); CPU keeps channels-last (1.2–1.4× faster there)
    for bf16_card in (True, False):
        auto = resolve_compute(DreamConfig(), CUDA, bf16_supported=bf16_card)
        assert (auto.precision, auto.dtype, auto.channels_last, auto.notes) == ("fp32", None, False, ())
    asked = resolve_compute(DreamConfig(precision="bf16"), CUDA, bf16_supported=True)
    assert (asked.precision, asked.dtype, asked.notes) == ("bf16", torch.bfloat16, ())
    old_card = resolve_compute(DreamConfig(precision="bf16"), CUDA, bf16_supported=False)
    assert old_card.precision == "fp16" and "bf16" in old_card.notes[0]
    assert resolve_compute(DreamConfig(precision="fp16"), CUDA, bf16_supported=True).dtype == torch.float16
    assert resolve_compute(DreamConfig(channels_last=True), CUDA, bf16_supported=True).channels_last
    assert not resolve_compute(DreamConfig(channels_last=False), CPU).channels_last


@pytest.mark.parametrize(("field", "value"), [("precision", "fp8"), ("channels_last", "yes"), ("compile", 1)])
def test_bad_compute_settings_are_config_errors(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field):
        DreamConfig(**{field: value}).validate()


def test_reduced_precision_falls_back_to_the_same_pixels_on_cpu(lite0) -> None:
    image = torch.rand(1, 3, 48, 64, generator=torch.Generator().manual_seed(0))
    ref = Dreamer(DreamConfig(**FAST), model=lite0, device="cpu").dream(
        image, generator=torch.Generator().manual_seed(1)
    )
    for wanted in ("bf16", "fp16"):
        dreamer = Dreamer(DreamConfig(precision=wanted, **FAST), model=lite0, device="cpu")
        assert dreamer.compute.precision == "fp32" and dreamer.notes
        out = dreamer.dream(image, generator=torch.Generator().manual_seed(1))
        assert torch.equal(out, ref)


# --- the CUDA code paths, run on CPU (autocast works there too) ------------------------------


@pytest.fixture(scope="module")
def lite_dreamer(lite0) -> Dreamer:
    return Dreamer(DreamConfig(**FAST), model=lite0, device="cpu")


def _engine(dreamer: Dreamer, **compute: object) -> GradientEngine:
    settings = dict(precision="fp32", channels_last=False, compile=False) | compute
    backend = settings.pop("backend", "inductor")
    return GradientEngine(dreamer.extractor, dreamer.objective, CPU, Compute(**settings), compile_backend=backend)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_autocast_gradient_points_where_fp32_does(lite_dreamer: Dreamer, precision: str) -> None:
    x = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    ref = _engine(lite_dreamer)(x)
    grad = _engine(lite_dreamer, precision=precision)(x)
    assert grad.dtype == torch.float32 and bool(torch.isfinite(grad).all())
    assert not torch.equal(grad, ref)  # it did run in reduced precision
    for i in range(2):  # per sample: the step normalises each sample on its own
        assert _cosine(grad[i], ref[i]) > 0.9


def _tiny(weight_scale: float) -> tuple[nn.Module, LayerObjective]:
    conv = nn.Conv2d(3, 4, 3, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(4, 3, 3, 3, generator=torch.Generator().manual_seed(0)) * weight_scale)
    conv.requires_grad_(False)
    return (lambda x: {"c": conv(x)}), LayerObjective("c")


def test_fp16_loss_scaling_rescues_gradients_that_underflow() -> None:
    extractor, objective = _tiny(1e-3)  # d mean(act²)/dx ≈ 1e-9: below fp16's smallest subnormal
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    fp16 = Compute("fp16", channels_last=False, compile=False)
    ref = GradientEngine(extractor, objective, CPU, Compute("fp32", False, False))(x)
    unscaled = GradientEngine(extractor, objective, CPU, fp16, initial_scale=1.0)(x)
    assert float((unscaled == 0).float().mean()) > 0.9  # what loss scaling is for
    scaled = GradientEngine(extractor, objective, CPU, fp16)(x)
    assert _cosine(scaled, ref) > 0.99
    assert float(scaled.abs().mean() / ref.abs().mean()) == pytest.approx(1.0, rel=0.05)  # the scale is undone


def test_fp16_scale_backs_off_when_the_gradient_overflows() -> None:
    extractor, objective = _tiny(100.0)  # scaled by 2¹⁶ the input gradient is ≈ 1e6, past fp16's 65504
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    ref = GradientEngine(extractor, objective, CPU, Compute("fp32", False, False))(x)
    engine = GradientEngine(extractor, objective, CPU, Compute("fp16", False, False))
    grad = engine(x)
    assert engine.scale < GradientEngine.INITIAL_SCALE
    assert bool(torch.isfinite(grad).all()) and _cosine(grad, ref) > 0.99


def test_fp16_gives_way_to_fp32_when_activations_overflow() -> None:
    extractor, objective = _tiny(1e5)  # activations ≈ 5e5: past fp16's largest number in the forward pass
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(6))
    ref = GradientEngine(extractor, objective, CPU, Compute("fp32", False, False))(x)
    engine = GradientEngine(extractor, objective, CPU, Compute("fp16", False, False))
    assert torch.allclose(engine(x), ref, rtol=1e-5)
    assert engine.dtype is None and len(engine.notes) == 1 and "fp32 from here" in engine.notes[0]
    engine(x)
    assert len(engine.notes) == 1


def test_channels_last_gives_the_same_gradient(lite_dreamer: Dreamer) -> None:
    x = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(3))
    nhwc = _engine(lite_dreamer, channels_last=True)
    assert torch.allclose(nhwc(x), _engine(lite_dreamer)(x), rtol=1e-4, atol=1e-7)


def test_compiled_extractor_gives_the_same_gradient(lite_dreamer: Dreamer) -> None:
    x = torch.randn(1, 3, 48, 64, generator=torch.Generator().manual_seed(4))
    # the "eager" backend runs Dynamo's capture without a C++ toolchain: what compile adds, minus codegen
    compiled = _engine(lite_dreamer, compile=True, backend="eager")
    assert torch.allclose(compiled(x), _engine(lite_dreamer)(x), rtol=1e-5, atol=1e-8)
    assert compiled.forward is not compiled.eager and not compiled.notes


def test_a_failing_compiler_falls_back_to_eager_once(lite_dreamer: Dreamer) -> None:
    def broken(gm: torch.fx.GraphModule, example_inputs: list) -> None:
        raise RuntimeError("no C++ compiler here")

    engine = _engine(lite_dreamer, compile=True, backend=broken)
    x = torch.randn(1, 3, 48, 64, generator=torch.Generator().manual_seed(5))
    assert torch.allclose(engine(x), _engine(lite_dreamer)(x))
    assert engine.forward is engine.eager
    assert len(engine.notes) == 1 and "torch.compile failed" in engine.notes[0]
    engine(x)
    assert len(engine.notes) == 1
