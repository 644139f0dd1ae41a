"""Model registry, weights loading (bundled, enum, file, offline), layers and the truncated extractor."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torchvision.models import feature_extraction

from distdream.errors import ConfigError, ModelError
from distdream.models import (
    DEFAULT_MODEL,
    LoadedModel,
    Weights,
    available_models,
    backend,
    backend_for,
    feature_extractor,
    list_layers,
    load_model,
    resolve_layers,
    weights_cached,
)
from distdream.models.efficientnet_lite import SamePadConv2d
from distdream.models.fx import fx_extractor, fx_layer_infos


def test_default_model_listed_first_and_torchvision_models_follow() -> None:
    names = available_models()
    assert names[0] == DEFAULT_MODEL == "efficientnet_lite0"
    assert {"googlenet", "inception_v3", "vgg16", "vgg19", "resnet50"} <= set(names)
    assert weights_cached(DEFAULT_MODEL)


def test_each_model_family_answers_through_its_registered_backend(lite0: LoadedModel) -> None:
    resnet = load_model("resnet18", weights=None)
    assert (lite0.family, resnet.family) == ("efficientnet_lite", "torchvision")
    assert backend_for("resnet18") is backend("torchvision") and backend_for(DEFAULT_MODEL) is backend(lite0.family)
    # a model's layers come from its family's backend: the bundled one's from its own listing, by name
    assert list_layers(lite0) == backend("efficientnet_lite").layer_infos(lite0.module, 224)
    assert "layer3" in {i.name for i in list_layers(resnet)}
    with pytest.raises(ModelError, match="unknown model family 'caffe'"):
        backend("caffe")
    with pytest.raises(ModelError, match=r"unknown model 'resnet81'\. Did you mean resnet18"):
        load_model("resnet81")


def test_loaded_model_is_frozen_and_in_eval_mode(lite0: LoadedModel) -> None:
    assert not lite0.module.training
    assert not any(p.requires_grad for p in lite0.module.parameters())
    assert lite0.preprocess.mean == (127 / 255,) * 3  # the TF-Lite preprocessing, from the entry


def test_torchvision_model_random_init_and_generic_default_layer() -> None:
    model = load_model("resnet18", weights=None)
    assert model.default_layers == ("layer3",)
    alex = load_model("alexnet", weights=None)
    strides = {i.name: i.stride for i in list_layers(alex)}
    assert strides[alex.default_layers[0]] <= 16  # a mid-level layer, not the deepest


def test_weights_from_a_local_state_dict_file(tmp_path: Path) -> None:
    torch.manual_seed(1)
    source = load_model("resnet18", weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save(source.module.state_dict(), path)
    loaded = load_model("resnet18", weights=str(path))
    assert torch.equal(loaded.module.fc.weight, source.module.fc.weight)
    assert loaded.weights == Weights(str(path), str(path)) and source.weights is None
    bundled = load_model().weights  # the offline default names its file, so a job's plan can fingerprint it
    assert bundled is not None and bundled.name == "IMAGENET1K (bundled)" and Path(bundled.file).is_file()


def test_bad_weights_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pth"
    junk.write_text("not a checkpoint")
    with pytest.raises(ModelError, match="not a PyTorch state dict"):
        load_model("resnet18", weights=str(junk))
    wrong = tmp_path / "wrong.pth"
    torch.save(load_model("resnet18", weights=None).module.state_dict(), wrong)
    with pytest.raises(ModelError, match="does not fit"):
        load_model("resnet34", weights=str(wrong))
    with pytest.raises(ModelError, match="does not exist"):
        load_model(DEFAULT_MODEL, weights=str(tmp_path / "missing.pth"))


def test_unknown_model_and_weights_names() -> None:
    with pytest.raises(ModelError, match=r"unknown model 'resnet5'.*resnet50.*distdream models"):
        load_model("resnet5")
    with pytest.raises(ModelError, match="IMAGENET1K_V1"):
        load_model("googlenet", weights="NO_SUCH_WEIGHTS")
    with pytest.raises(ModelError, match="DEFAULT"):
        load_model(DEFAULT_MODEL, weights="IMAGENET22K")


def test_offline_download_names_both_ways_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # An empty torch cache and no route to download.pytorch.org (this machine has no network
    # beyond package registries): the weights cannot be had, and the error must say what to do.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # discard port: refused at once, even online
    assert not weights_cached("googlenet")
    with pytest.raises(ModelError) as err:
        load_model("googlenet", weights="DEFAULT")
    message = str(err.value)
    assert "--weights PATH" in message and "efficientnet_lite0" in message
    assert str(tmp_path) in message  # names the cache it looked in


def test_list_layers_names_channels_and_strides(lite0: LoadedModel) -> None:
    infos = {i.name: i for i in list_layers(lite0)}
    assert infos["_blocks.9"].channels == 112 and infos["_blocks.9"].stride == 16
    assert infos["_blocks.15"].channels == 320 and infos["_blocks.15"].stride == 32
    assert infos["_conv_stem"].stride == 2
    assert "_fc" not in infos  # not a feature map
    names = [i.name for i in list_layers(lite0)]
    assert names.index("_blocks.3") < names.index("_blocks.4._expand_conv")  # execution order


def test_module_name_means_its_last_node() -> None:
    model = load_model("resnet18", weights=None)
    x = torch.rand(1, 3, 64, 64)
    by_module = feature_extractor(model, ["layer2"])(x)["layer2"]
    by_node = feature_extractor(model, ["layer2.1.relu_1"])(x)["layer2.1.relu_1"]
    assert torch.equal(by_module, by_node)


LEAF = {"leaf_modules": [SamePadConv2d]}  # FX must not trace into the padding arithmetic


def test_extractor_is_truncated_frozen_and_eval(lite0: LoadedModel) -> None:
    extractor = feature_extractor(lite0, ["_blocks.5"])
    targets = {name for name, _ in extractor.named_modules()}
    assert "ops._blocks/5/_project_conv" in targets
    assert not any(t.startswith(("ops._blocks/6", "ops._conv_head", "ops._fc")) for t in targets)
    assert not extractor.training
    assert not any(p.requires_grad for p in extractor.parameters())
    out = extractor(torch.rand(1, 3, 64, 80))
    assert out["_blocks.5"].shape == (1, 80, 4, 5)


def test_unknown_layer_suggests_close_names_and_the_command(lite0: LoadedModel) -> None:
    with pytest.raises(ConfigError) as err:
        resolve_layers(lite0, ["_blocks.9", "blocks.10"])
    message = str(err.value)
    assert "'blocks.10'" in message and "_blocks.10" in message
    assert "distdream layers efficientnet_lite0" in message


def test_the_bundled_model_s_layers_are_torchvision_s_without_tracing(lite0: LoadedModel) -> None:
    # names, order, channels and strides as FX tracing and a forward pass find them, at two sizes
    for size in (224, 100):
        assert list_layers(lite0, size) == fx_layer_infos(lite0.module, size, LEAF)
    names = [i.name for i in list_layers(lite0)]
    assert "_blocks.7.add" in names and names[-1] == "adaptive_avg_pool2d"


def test_the_bundled_model_s_extractor_computes_what_the_traced_one_does(lite0: LoadedModel) -> None:
    x = torch.rand(2, 3, 70, 90, generator=torch.Generator().manual_seed(1))
    for layers in (["_blocks.9", "_blocks.12"], ["_act", "_blocks.2._act_1", "_blocks"], ["_blocks.4.add"]):
        native, traced = feature_extractor(lite0, layers), fx_extractor(lite0.module, layers, LEAF)
        with torch.no_grad():
            got, want = native(x), traced(x)
        assert list(got) == layers
        for layer in layers:
            assert torch.equal(got[layer], want[layer]), layer


def test_batchnorm_is_folded_without_changing_features(lite0: LoadedModel) -> None:
    layers = ["_blocks.9", "_blocks.3._project_conv"]  # a requested conv output must stay unfolded
    folded = feature_extractor(lite0, layers)
    reference = feature_extraction.create_feature_extractor(
        lite0.module, return_nodes=layers, tracer_kwargs=LEAF
    ).eval()
    x = torch.rand(1, 3, 80, 112, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        got, want = folded(x), reference(x)
    for layer in layers:
        assert torch.allclose(got[layer], want[layer], rtol=1e-4, atol=1e-4 * float(want[layer].abs().max()))
    remaining = [n for n, m in folded.named_modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert remaining == ["ops._blocks/3/_bn2"]  # the one after the requested conv
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in lite0.module.modules()) == 49  # model untouched
