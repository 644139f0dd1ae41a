"""Where a chunk's pieces live and how a finished piece is recognised: the job's :class:`Layout`
(by its output format), each chunk's :class:`ChunkFiles`, and :func:`verify` / :func:`piece_fingerprint`,
which the ledger and a resume rely on. No Ray here."""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .. import storage
from ..chunking import Chunk
from ..config import Encoding
from ..errors import JobError, VideoError
from ..frames.encode import Span
from ..video import Format, VideoIndex, frame_file, is_pattern, probe
from ..video.formats import pixel_formats

__all__ = ["ChunkFiles", "Layout", "Piece", "piece_fingerprint", "verify"]


@dataclass(frozen=True)
class Layout:
    """Where a job's pieces go, by its output format.

    Middles and windows are written in the job's codec (``suffix``); lead-ins and tails, the seam
    windows' sides, are intermediates read once and written losslessly in the output's own pixel
    format (FFV1, or 8/16-bit PNG for an image-sequence job). An image-sequence job writes its
    middles and windows straight to the output's numbered files (``frames_to``, numbered from
    ``offset``): nothing is joined.
    """

    suffix: str = ".mp4"
    side_suffix: str = ".mkv"
    side_encoding: Encoding = Encoding(codec="ffv1")
    frames_to: str | None = None
    offset: int = 0

    @classmethod
    def of(cls, fmt: Format, index: VideoIndex, output: str) -> Layout:
        if is_pattern(output):
            side = Encoding(codec="png", pix_fmt="rgb48be" if fmt.bits > 8 else "rgb24")
            return cls(fmt.suffix, ".%06d.png", side, str(output), index.first_number or 0)
        ffv1 = pixel_formats("ffv1")
        return cls(fmt.suffix, ".mkv", Encoding(codec="ffv1", pix_fmt=fmt.pix_fmt if fmt.pix_fmt in ffv1 else None))


@dataclass(frozen=True)
class Piece(Span):
    """A :class:`~distdream.frames.encode.Span` of a chunk, frames ``[start, end)`` into ``path`` (a
    printf pattern: numbered image files, file ``offset + frame``), with ``key``, the ledger's
    name for it: its path inside the work directory, or ``frames#START-END`` for numbered output
    files, so that a work directory moved, or named another way, still resumes."""

    key: str = ""

    @property
    def frames(self) -> int:
        return self.end - self.start


class ChunkFiles:
    """The one place that knows a chunk's pieces, their frame spans, and its seam window's sides.

    A chunk with a lead-in writes it losslessly (its side of window k), then its owned middle
    with the job's encoding, then losslessly its tail (the earlier side of window k + 1); a chunk
    whose successor continues its shot (a handoff) also writes its carried state. Names are
    deterministic, so a retried chunk overwrites rather than duplicates.
    """

    def __init__(self, workdir: str | os.PathLike[str], chunk: Chunk, layout: Layout = Layout()) -> None:
        # plain strings: the work directory may be a local path or an object-storage URI
        self.chunk, self.layout = chunk, layout
        side, own, name = layout.side_suffix, layout.suffix, chunk.name
        self._keys: dict[str, str] = {}  # path → the ledger's key for it (its name in the work directory)

        def at(key: str) -> str:
            path = storage.join(workdir, *key.split("/"))
            self._keys[path] = key
            return path

        self.lead = at(f"chunks/{name}.lead{side}")  # [first, start)
        self.middle = layout.frames_to or at(f"chunks/{name}.mid{own}")  # [start, end - tail)
        self.tail = at(f"chunks/{name}.tail{side}")  # [end - tail, end)
        self.window = layout.frames_to or at(f"windows/{name}{own}")  # crossfaded [first, start)
        # what this chunk hands the next one of its shot, and what it continues from
        self.state = at(f"chunks/{name}.carried.npz")
        self.state_key = self._keys[self.state]
        self.carried_in = storage.join(workdir, "chunks", f"{chunk.index - 1:05d}.carried.npz")

    def _piece(self, start: int, end: int, path: str, encoding: Encoding) -> Piece:
        return Piece(start, end, path, encoding, self._keys.get(path, f"frames#{start}-{end}"))

    def pieces(self, encoding: Encoding) -> list[Piece]:
        """What the worker writes for this chunk, in frame order; they tile ``[first, end)``."""
        c, side = self.chunk, self.layout.side_encoding
        out = [self._piece(c.start, c.end - c.tail, self.middle, encoding)]
        if c.lead_in:
            out.insert(0, self._piece(c.first, c.start, self.lead, side))
        if c.tail:
            out.append(self._piece(c.end - c.tail, c.end, self.tail, side))
        return out

    def outputs(self) -> list[Piece]:
        """The pieces a finished chunk must have."""
        return self.pieces(self.layout.side_encoding)

    def window_piece(self) -> Piece:
        return self._piece(self.chunk.first, self.chunk.start, self.window, self.layout.side_encoding)

    @staticmethod
    def window_sides(
        workdir: str | os.PathLike[str], earlier: Chunk, later: Chunk, layout: Layout = Layout()
    ) -> tuple[str, str, str]:
        """(earlier side, later side, crossfaded window) of the seam before ``later``."""
        return (
            ChunkFiles(workdir, earlier, layout).tail,
            ChunkFiles(workdir, later, layout).lead,
            ChunkFiles(workdir, later, layout).window,
        )


def piece_fingerprint(piece: Piece, offset: int = 0) -> str:
    """What a piece holds: the file's fingerprint, or for numbered files one over all of theirs."""
    if not is_pattern(piece.path):
        return storage.fingerprint(piece.path)
    import hashlib

    digest = hashlib.sha256()
    for i in range(piece.start, piece.end):
        digest.update(storage.fingerprint(frame_file(str(piece.path), offset + i)).encode())
    return f"frames:{digest.hexdigest()}"


def _image_ok(path: str) -> bool:
    """Whether ``path`` is an image file that decodes whole (a zero-byte frame, or one torn by a
    crash before its data reached the disk, is not). Reading it may fail as storage fails (an
    ``OSError`` for the caller); decoding what was read fails only as a damaged frame."""
    from PIL import Image, UnidentifiedImageError

    try:
        data = storage.read_bytes(path)
    except FileNotFoundError:
        return False
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()  # every pixel: a header alone says nothing of a torn tail
            return image.size[0] > 0 and image.size[1] > 0
    except (UnidentifiedImageError, SyntaxError, ValueError, OSError):
        return False


def _frames_ok(piece: Piece, offset: int) -> bool:
    if not is_pattern(piece.path):
        return storage.exists(piece.path) and probe(piece.path).frame_count == piece.frames
    return all(_image_ok(frame_file(str(piece.path), offset + i)) for i in range(piece.start, piece.end))


def verify(pieces: Iterable[Piece], fingerprints: Mapping[str, str] | None = None, offset: int = 0) -> bool:
    """Whether every piece exists whole with its frame count and, unless ``fingerprints`` is
    ``None`` (a ledger rebuilt from the files), the fingerprint the ledger holds for it: a piece
    the ledger has no fingerprint for fails. A piece that is missing, torn or changed is ``False``
    (its chunk is redone); storage that cannot be read is a :class:`JobError`, never a redo."""
    for piece in pieces:
        try:
            if not _frames_ok(piece, offset):
                return False
            if fingerprints is not None and piece_fingerprint(piece, offset) != fingerprints.get(piece.key):
                return False
        except (VideoError, FileNotFoundError):
            return False
        except OSError as exc:
            raise JobError(f"cannot read {piece.path} ({exc.strerror or exc}); fix the storage, then resume") from None
    return True
