"""Shared fixtures: real photos from scikit-image, the bundled model loaded once per session, one
local Ray instance shared by the session's Ray tests (run last), an S3-compatible server on loopback."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

import numpy as np
import pytest
from skimage import data

from distdream.models import LoadedModel, load_model


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that uses the shared Ray instance is a ``ray`` test (the others mark themselves),
    and the ``ray`` tests run last, those with a cluster of their own (``own_ray``) at the very end:
    the tests before them run without Ray in this process, as a user's renders do, and the shared
    instance starts once (a module with its own cluster shuts it down)."""
    for item in items:
        if "local_ray" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.ray)
    items.sort(
        key=lambda item: (item.get_closest_marker("ray") is not None, item.get_closest_marker("own_ray") is not None)
    )


@pytest.fixture(scope="session")
def lite0() -> LoadedModel:
    """The bundled EfficientNet-Lite0 with its real ImageNet weights."""
    return load_model("efficientnet_lite0")


@pytest.fixture(scope="session")
def chelsea() -> np.ndarray:
    """scikit-image's cat photo, (300, 451, 3) uint8."""
    return data.chelsea()


@pytest.fixture(scope="session")
def small_photo() -> np.ndarray:
    """A 96×128 crop of the astronaut photo: small enough for many dream runs on a CPU."""
    return np.ascontiguousarray(data.astronaut()[100:292:2, 100:356:2])


@pytest.fixture(scope="session")
def _shared_ray() -> Iterator[None]:
    """Shuts the shared Ray instance down after the last test."""
    yield
    ray = sys.modules.get("ray")
    if ray is not None:
        ray.shutdown()


@pytest.fixture(scope="module")
def local_ray(_shared_ray: None) -> None:
    """A local Ray instance shared by the session's modules, started on first use (and again after
    a module with a cluster of its own shut it down). ``address="local"`` starts an instance of
    the tests' own rather than joining one that happens to run on the machine (joining would
    refuse ``num_cpus``). Modules use it with ``pytestmark``.
    """
    import ray

    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)


def own_ray() -> None:
    """Before a module starts a cluster of its own: the shared instance goes (``local_ray`` starts
    it again for the next module that uses it)."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


def free_port() -> int:
    """A TCP port nothing listens on right now (for test servers)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def s3_server(bucket: str) -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 with ``bucket``, its address and credentials in the environment
    (processes started meanwhile, Ray's workers among them, inherit them); yields ``s3://bucket``."""
    import boto3
    import s3fs
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    s3fs.S3FileSystem.clear_instance_cache()  # a cached filesystem would still talk to an earlier server
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        boto3.client("s3").create_bucket(Bucket=bucket)
        yield f"s3://{bucket}"
    finally:
        server.stop()
        s3fs.S3FileSystem.clear_instance_cache()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
