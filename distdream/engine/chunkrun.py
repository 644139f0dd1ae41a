"""Dreaming one chunk into its pieces, and crossfading one seam window: the work itself, no Ray.

A Ray worker (:mod:`.worker`) and the in-process loop (:mod:`.local`) both run a
:class:`ChunkRenderer`, so a render gives the same bytes whichever of them runs it. Pieces are
written under temp names and renamed (see :class:`~.pieces.ChunkFiles`), so a retried chunk never
leaves a duplicate or a torn file; what comes back is a small record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from .. import storage
from ..chunking import Chunk
from ..config import Encoding, RenderConfig
from ..dream import Dreamer
from ..frames.lanes import LaneBatcher
from ..frames.pipeline import Carried, RangeResult, dream_range
from ..models import LoadedModel
from ..video import VideoIndex
from .pieces import ChunkFiles, Layout, Piece, piece_fingerprint
from .stitch import crossfade

__all__ = ["ChunkRenderer", "crossfade_window"]


class ChunkRenderer:
    """One worker's model and settings; dreams whole chunks into a work directory.

    With ``lanes`` > 1 several threads may call :meth:`render` at once: a
    :class:`~distdream.frames.lanes.LaneBatcher` dreams their frames as one batch (the model is built on
    its batching thread). ``model`` reuses a network already loaded in this process.
    """

    def __init__(
        self, config: RenderConfig, device: str | None, lanes: int = 1, model: LoadedModel | None = None
    ) -> None:
        self.config = config

        def build() -> Dreamer:
            return Dreamer(config.dream, device=device, model=model)

        self.batcher: LaneBatcher | None = LaneBatcher(build) if lanes > 1 else None
        self.dreamer = self.batcher.dreamer if self.batcher is not None else build()

    @property
    def largest_batch(self) -> int:
        return self.batcher.largest_batch if self.batcher is not None else 1

    def render(
        self,
        index: VideoIndex,
        chunk: Chunk,
        workdir: str,
        layout: Layout,
        progress: Callable[[int], None],
        on_frame: Callable[[int], None] | None = None,
    ) -> dict[str, Any]:
        """Dream ``chunk`` into its pieces; returns stats, fingerprints, compute and notes."""
        files = ChunkFiles(workdir, chunk, layout)
        carried = Carried.from_bytes(storage.read_bytes(files.carried_in)) if chunk.begins == "handoff" else None
        storage.makedirs(storage.parent(files.state))
        pieces = files.pieces(self.config.encoding)

        def run(dreamer: Any) -> RangeResult:
            return dream_range(
                index,
                chunk.first,
                chunk.end,
                pieces,
                self.config,
                dreamer=dreamer,
                seed=chunk.seed,
                progress=progress,
                on_frame=on_frame,
                carried=carried,
                relay=chunk.relay,
            )

        if self.batcher is None:
            done = run(self.dreamer)
        else:
            import torch

            # This lane's thread does only small per-frame tensor work; one OpenMP thread keeps it
            # from starting a thread pool of its own next to the batching thread's (see LaneBatcher).
            torch.set_num_threads(1)
            with self.batcher.lane() as lane:
                done = run(lane)
        fingerprints = {p.key: piece_fingerprint(p, layout.offset) for p in pieces}
        if chunk.hands_off and done.carried is not None:  # the next chunk of the shot continues from here
            storage.write_bytes(files.state, done.carried.to_bytes())
            fingerprints[files.state_key] = storage.fingerprint(files.state)
        return {
            "chunk": chunk.index,
            "frames": chunk.dreamed,
            "stats": asdict(done.stats),
            "compute": self.dreamer.compute.describe(),
            "notes": list(self.dreamer.notes),
            "fingerprints": fingerprints,
            "batch": self.largest_batch,
        }


def crossfade_window(
    side_a: str, side_b: str, output: str, encoding: Encoding, index: VideoIndex, frames: int, first: int
) -> str:
    """Crossfade a seam's two sides into its window piece; returns the piece's fingerprint."""
    crossfade(side_a, side_b, output, encoding, index, frames, first)
    return piece_fingerprint(Piece(first, first + frames, output, encoding), index.first_number or 0)
