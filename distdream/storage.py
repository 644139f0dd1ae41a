"""Local paths and object-storage URIs (``s3://``, ``gs://``, any fsspec URI) behind one interface.

Input, output and work directory may live on object storage: workers read their frame range
from the input URI (ranged reads through a file object) and put their pieces into the work
directory URI.

Every output of distdream (images, segments, videos, figures, job files) is written through
:func:`atomic_output` (or :func:`temp_for` and :func:`publish`, for a writer that stays open): to
a temporary file, then renamed into place beside it, or put whole for a URI. A rename within one
filesystem is atomic and so is an object put — a reader sees the whole output or none — so a
crash leaves no torn file at the final path. :func:`check_writable` says early, with the caller's
error type, when an output cannot be written.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from .errors import DistDreamError, OutputError

__all__ = [
    "atomic_output",
    "check_container",
    "check_writable",
    "exists",
    "filesystem",
    "fingerprint",
    "identity",
    "is_uri",
    "join",
    "makedirs",
    "name_of",
    "open_read",
    "parent",
    "publish",
    "put_file",
    "read_bytes",
    "read_text",
    "remove",
    "remove_tree",
    "resolve",
    "size",
    "temp_for",
    "write_bytes",
    "write_text",
]

# fsspec protocols whose files live in one process (or one machine): a job's other processes,
# on this node or another, cannot see them
NODE_LOCAL = ("memory",)
LOCAL = ("file", "local")


def is_uri(path: str | os.PathLike[str]) -> bool:
    return "://" in str(path)


def resolve(path: str | os.PathLike[str], what: str, error: type[DistDreamError] = DistDreamError) -> str:
    """``path`` as every process of a job sees it: a local path made absolute here, on the driver
    (a worker on another node has another working directory), a ``file://`` URI as the local path
    it names, another URI as it is. An empty path or a node-local URI (``memory://``) is an
    ``error`` naming ``what`` it is."""
    text = str(path)
    if not text.strip():
        raise error(f"{what} is an empty path; give a file name or an object-storage URI")
    if not is_uri(text):
        return os.path.abspath(text)
    protocol, rest = text.split("://", 1)
    if protocol.lower() in LOCAL:
        from urllib.parse import unquote, urlsplit

        return os.path.abspath(unquote(urlsplit(text).path) or rest)
    if protocol.lower() in NODE_LOCAL:
        raise error(
            f"{what} {text}: {protocol}:// lives in one process's memory, which the job's workers cannot "
            "see; give a path every node sees, or an object-storage URI"
        )
    return text


def filesystem(uri: str) -> tuple[Any, str]:
    """The fsspec filesystem of ``uri`` and the path inside it."""
    import fsspec

    try:
        return fsspec.core.url_to_fs(uri)
    except (ImportError, ValueError) as exc:
        raise DistDreamError(
            f"cannot use {uri}: {exc} (install the fsspec backend for it, e.g. s3fs or gcsfs)"
        ) from None


def _storage_error(uri: str, exc: BaseException, error: type[DistDreamError]) -> DistDreamError:
    text = f"{exc.__class__.__name__}: {exc}".splitlines()[0][:300]
    if "credential" in text.lower() or "NoCredentials" in text:
        return error(
            f"no credentials for {uri} ({text}); set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or your "
            "provider's equivalent"
        )
    if isinstance(exc, FileNotFoundError) or "NoSuchBucket" in text:
        return error(f"{uri} does not exist (is the bucket name right?)")
    return error(f"cannot use {uri}: {text}")


def join(base: str | os.PathLike[str], *parts: str) -> str:
    if is_uri(base):
        return "/".join([str(base).rstrip("/"), *parts])
    return str(Path(base, *parts))


def parent(path: str | os.PathLike[str]) -> str:
    if is_uri(path):
        return str(path).rstrip("/").rsplit("/", 1)[0]
    return str(Path(path).parent)


def name_of(path: str | os.PathLike[str]) -> str:
    return str(path).rstrip("/").rsplit("/", 1)[-1] if is_uri(path) else Path(path).name


def exists(path: str | os.PathLike[str], error: type[DistDreamError] = DistDreamError) -> bool:
    if not is_uri(path):
        return Path(path).exists()
    fs, p = filesystem(str(path))
    try:
        return bool(fs.exists(p))
    except Exception as exc:  # credentials, network, permissions: say which, in the caller's error type
        raise _storage_error(str(path), exc, error) from None


def size(path: str | os.PathLike[str]) -> int:
    if not is_uri(path):
        return Path(path).stat().st_size
    fs, p = filesystem(str(path))
    return int(fs.size(p))


def open_read(uri: str, error: type[DistDreamError] = DistDreamError) -> IO[bytes]:
    """A seekable binary file object (ranged reads) for ``uri``."""
    fs, p = filesystem(uri)
    try:
        return fs.open(p, "rb")
    except Exception as exc:
        raise _storage_error(uri, exc, error) from None


def read_text(path: str | os.PathLike[str]) -> str:
    """A small text file (plan, ledger) as UTF-8; bytes that are not become U+FFFD, so a damaged
    file reads as damaged text (its reader says so, or rebuilds it), never as a traceback."""
    if not is_uri(path):
        return Path(path).read_text(encoding="utf-8", errors="replace")
    fs, p = filesystem(str(path))
    return fs.cat_file(p).decode("utf-8", errors="replace")


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Replace the file or object at ``path`` whole with UTF-8 ``text`` (see :func:`write_bytes`)."""
    write_bytes(path, text.encode())


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace the file or object at ``path`` whole (temp + rename locally, one put remotely)."""
    if is_uri(path):
        fs, p = filesystem(str(path))
        fs.pipe_file(p, data)
        return
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)


def read_bytes(path: str | os.PathLike[str]) -> bytes:
    if not is_uri(path):
        return Path(path).read_bytes()
    fs, p = filesystem(str(path))
    return fs.cat_file(p)


def remove(path: str | os.PathLike[str]) -> None:
    """Delete one file or object; nothing there is fine."""
    if not is_uri(path):
        Path(path).unlink(missing_ok=True)
        return
    fs, p = filesystem(str(path))
    try:
        fs.rm_file(p)
    except FileNotFoundError:
        pass


def fingerprint(path: str | os.PathLike[str]) -> str:
    """What a file holds, cheaply comparable later: sha256 of a local file, the ETag of an object."""
    if is_uri(path):
        fs, p = filesystem(str(path))
        info = fs.info(p)
        tag = info.get("ETag") or info.get("etag") or info.get("md5Hash") or info.get("generation")
        return f"etag:{str(tag).strip(chr(34))}" if tag else f"size:{info.get('size')}"
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}"


def identity(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Size and version of a file or object: mtime locally, ETag or generation on object storage."""
    if is_uri(path):
        fs, p = filesystem(str(path))
        info = fs.info(p)
        version = info.get("ETag") or info.get("etag") or info.get("generation") or info.get("LastModified")
        return {"size": int(info.get("size") or 0), "version": str(version).strip('"')}
    stat = Path(path).stat()
    return {"size": stat.st_size, "version": f"mtime_ns:{stat.st_mtime_ns}"}


def put_file(local: str | os.PathLike[str], uri: str, error: type[DistDreamError] = DistDreamError) -> None:
    fs, p = filesystem(uri)
    try:
        fs.put_file(str(local), p)
    except Exception as exc:
        raise _storage_error(uri, exc, error) from None


def makedirs(path: str | os.PathLike[str]) -> None:
    if not is_uri(path):  # object stores have no directories to make
        Path(path).mkdir(parents=True, exist_ok=True)


def remove_tree(path: str | os.PathLike[str]) -> None:
    if not is_uri(path):
        shutil.rmtree(path, ignore_errors=True)
        return
    fs, p = filesystem(str(path))
    try:
        fs.rm(p, recursive=True)
    except FileNotFoundError:
        pass


def check_writable(path: str | os.PathLike[str], error: type[DistDreamError] = OutputError) -> Path | str:
    """``path`` as a location (a ``Path``, or the URI), or ``error`` unless a file can be written
    there: a probe file beside it is created and deleted (locally; permission bits say nothing to
    root or on a read-only mount), or a probe object is put and deleted (object storage)."""
    if not is_uri(path):
        return _check_local(Path(path), error)
    check_container(str(path), error)
    probe = join(parent(path), f".{name_of(path)}.{os.getpid()}.probe")
    fs, p = filesystem(probe)
    try:
        fs.pipe_file(p, b"")
        fs.rm_file(p)
    except Exception as exc:
        raise _storage_error(str(path), exc, error) from None
    return str(path)


def _check_local(path: Path, error: type[DistDreamError]) -> Path:
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise error(f"output directory {folder} does not exist; create it or choose another output path")
    if path.is_dir():
        raise error(f"output path {path} is a directory; give a file name inside it")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise error(f"output directory {folder} is not writable ({exc.strerror}); choose another output path") from None
    return path


def temp_for(final: str | os.PathLike[str], tag: str = "partial") -> Path:
    """A new empty local file to write ``final`` into, with ``final``'s extension (muxers and image
    writers pick their format from it): beside it, or in local temp for a URI. It gets the
    permissions a plain ``open()`` would give ``final`` under the user's umask (``mkstemp`` makes it
    private, and the rename would carry that onto the output)."""
    name = name_of(final) if is_uri(final) else Path(final).name
    stem, dot, ext = name.rpartition(".") if "." in name else (name, "", "")
    folder = None if is_uri(final) else (Path(final).parent if str(Path(final).parent) else Path("."))
    fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=f".{tag}{dot}{ext}", dir=folder)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
    finally:
        os.close(fd)
    return Path(tmp)


def publish(tmp: Path, final: str | os.PathLike[str], error: type[DistDreamError] = OutputError) -> None:
    """Move the finished ``tmp`` to ``final``: a rename, or a put of the whole object for a URI.
    Locally the data reaches the disk before the name does, and the name before this returns: a
    piece, a carried state or a ledger that a crash (power, a killed VM) could tear is never
    recorded as whole."""
    if is_uri(final):
        try:
            put_file(tmp, str(final), error)
        finally:
            tmp.unlink(missing_ok=True)
    else:
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        _sync_folder(os.path.dirname(os.path.abspath(final)))


def _sync_folder(folder: str) -> None:
    """Make a rename in ``folder`` durable (where the filesystem can: some refuse a folder's fsync)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], error: type[DistDreamError] = OutputError) -> Iterator[Path]:
    """A local temp file that becomes ``path`` when the block exits cleanly and vanishes otherwise
    (a full disk or an exception must leave neither a torn output nor the temp behind)."""
    tmp = temp_for(path)
    try:
        yield tmp
        publish(tmp, path, error)
    finally:
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    """The process's umask, read without changing it (Linux); else by setting and restoring it."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # pragma: no cover - not Linux
    os.umask(mask)
    return mask


def check_container(uri: str, error: type[DistDreamError]) -> None:
    """Fail early if the bucket (or container) of ``uri`` is missing or unreadable."""
    fs, p = filesystem(uri)
    bucket = p.split("/", 1)[0]
    try:
        ok = fs.exists(bucket)
    except Exception as exc:
        raise _storage_error(uri, exc, error) from None
    if not ok:
        raise error(f"bucket of {uri} does not exist; create it or choose another location")
