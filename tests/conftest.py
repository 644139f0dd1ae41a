"""Shared fixtures: real photos from scikit-image, the bundled model loaded once per session, a
local Ray instance per module, an S3-compatible server on loopback."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import numpy as np
import pytest
from skimage import data

from distdream.models import LoadedModel, load_model


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that uses the module's Ray instance is a ``ray`` test (the others mark themselves)."""
    for item in items:
        if "local_ray" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.ray)


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


@pytest.fixture(scope="module")
def local_ray():
    """A Ray instance of this module's own, even if another cluster runs on the machine.

    ``address="local"`` starts a new instance rather than joining one that happens to run
    (joining would refuse ``num_cpus``). Modules use it with ``pytestmark``.
    """
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
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
