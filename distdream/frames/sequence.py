"""A sequence of frames dreamed in order: the dream travels with the scene.

Each frame of a shot starts from itself plus the previous frame's dream residual carried onto it
(:class:`SequenceStep`: warped by flow, masked, decayed — the pipeline says how); a keyframe
starts fresh and is settled in place to the strength carried frames reach (:func:`settle_keep`);
every carried frame is held at its keyframe's strength and colour (:class:`Level`, :func:`held`),
and the temporal term pulls it toward the warped previous output where the flow can be trusted.
Where the scene is still (a step's :class:`Scene`) the dream is held there, and what the shot
remembers (:class:`~distdream.frames.memory.Memory`) comes back where the frame shows it again.
Pure torch on top of :class:`~distdream.dream.Dreamer`; no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial

import torch

from ..dream import Anchor, FrameDreamer
from .chroma import chroma
from .memory import Memory

__all__ = [
    "HOLD_MAX_LIFT",
    "Level",
    "Scene",
    "SequenceStep",
    "ShotSettings",
    "ShotState",
    "dream_sequence",
    "held",
    "settle_keep",
]


@dataclass(frozen=True)
class Scene:
    """How still a carried frame's scene is, for a dream that holds where the scene does."""

    still: torch.Tensor  # (1, 1, H, W) in [0, 1]: steady · how still each pixel is
    steady: float  # how firmly a dream restored from memory is held (the ``steady`` setting)
    camera_moved: bool  # most of the frame moves: what was remembered is no longer where it was


@dataclass(frozen=True)
class SequenceStep:
    """One input frame of a sequence and how the previous frame's dream reaches it.

    ``carry`` maps the previous dream residual (dream − frame, (1, 3, H, W)) to what this frame
    starts with on top of itself — in a video: warped by optical flow, masked where the scene is
    new, faded by a decay. ``None`` makes the frame a keyframe (first frame, or after a cut).
    """

    frame: torch.Tensor  # (1, 3, H, W) RGB in [0, 1]
    carry: Callable[[torch.Tensor], torch.Tensor] | None
    # maps the previous residual to what this frame should stay close to, how far to trust it,
    # and how still the scene is (None: not held still): (target RGB, mask, still) — the anchor
    anchor: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]] | None = None
    scene: Scene | None = None  # None: nothing is held still or remembered


def in_range(frame: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """``image`` clamped to [0, 1], except where ``frame`` itself lies outside it (a video's
    out-of-gamut codes): there the bound is the frame's value, so an undreamed frame comes back
    exactly as it went in. A dream step clamps to [0, 1] anyway."""
    return torch.maximum(torch.minimum(image, frame.clamp_min(1.0)), frame.clamp_max(0.0))


def settle_keep(residual: torch.Tensor, following: SequenceStep | None, decay: float) -> float:
    """How much of its own residual a settling keyframe keeps per step: what of a dream the
    shot's motion carries to the next frame (mask and resampling losses; 1.0 on a still shot),
    without the decay.

    The decay is left out on purpose. Carried frames approach their steady strength in two
    phases, a fast one (about ``1 / (1 − decay)`` frames) and a slow creep as the patterns grow
    into themselves (over 100 frames on a still shot; docs/benchmarks/cpu.md). A handful of
    settle steps at ``decay`` reaches only the fast phase; keeping the whole residual reaches
    about the steady level in the same steps. Where motion
    loses part of the dream each frame the steady level is lower, and so is ``keep``. Without a
    following carried frame (a one-frame shot, a cut next) it is ``decay``.
    """
    if following is None or following.carry is None or decay <= 0:
        return decay
    size = float(residual.abs().mean())
    if size == 0.0:
        return decay
    moved = float(following.carry(residual).abs().mean())
    return min(1.0, moved / (decay * size))


HOLD_MAX_LIFT = 1.25  # the most a held frame's residual is scaled up in one frame


@dataclass(frozen=True)
class Level:
    """What a held shot keeps of its keyframe's dream: the residual's mean colour (its cast, one
    value per channel), its strength (mean magnitude), and the colour the dream adds (the dream's
    chroma minus the frame's, chroma = mean max − min over RGB)."""

    cast: tuple[float, float, float]
    strength: float
    colour: float  # added chroma, in [0, 1] units: additive, so a grey stretch of a pan is not over-coloured

    @classmethod
    def of(cls, frame: torch.Tensor, residual: torch.Tensor) -> Level:
        cast = residual.mean(dim=(2, 3)).flatten()
        return cls(
            (float(cast[0]), float(cast[1]), float(cast[2])),
            float(residual.abs().mean()),
            chroma((frame + residual).clamp(0.0, 1.0), 1) - chroma(frame, 1),
        )

    def to_tensor(self) -> torch.Tensor:
        return torch.tensor([*self.cast, self.strength, self.colour], dtype=torch.float64)

    @classmethod
    def from_tensor(cls, values: torch.Tensor) -> Level:
        v = [float(x) for x in values.flatten()]
        return cls((v[0], v[1], v[2]), v[3], v[4])


def held(frame: torch.Tensor, residual: torch.Tensor, level: Level) -> tuple[torch.Tensor, torch.Tensor]:
    """``frame`` plus ``residual`` brought back to ``level``, clamped to [0, 1]; returns the dream
    and its residual.

    The residual's cast is replaced by the level's; it is scaled to the level's strength (up by
    at most :data:`HOLD_MAX_LIFT`); then its colour part (what differs between the channels) is
    scaled so that, after clamping to the valid range, the dream adds as much chroma to the frame
    as the level says (one secant step), and the strength is set once more. Holding the strength
    alone, or the residual's own colour magnitude, left a long still shot greyer (the dream's
    colours arrange themselves so that less of them shows; docs/benchmarks/cpu.md).
    """
    cast = torch.tensor(level.cast, dtype=residual.dtype, device=residual.device).view(1, 3, 1, 1)
    rest = residual - residual.mean(dim=(2, 3), keepdim=True)
    size = float((cast + rest).abs().mean())
    if size == 0.0:
        return frame + residual, residual
    lift = min(level.strength / size, HOLD_MAX_LIFT)
    rest = rest * lift
    grey = rest.mean(dim=1, keepdim=True)
    colour = rest - grey

    def dream(gain: float) -> torch.Tensor:
        return in_range(frame, frame + cast + grey + gain * colour)

    gain = 1.0
    base = chroma(frame, 1)
    at_1, at_2 = chroma(dream(1.0), 1) - base, chroma(dream(1.25), 1) - base
    if at_2 > at_1:  # the clamped colour grows about linearly with the gain
        gain = 1.0 + 0.25 * (level.colour - at_1) / (at_2 - at_1)
        gain = min(max(gain, 1 / HOLD_MAX_LIFT), HOLD_MAX_LIFT / max(lift, 1.0))  # the lift stays bounded
    # the colour change moved the strength a little: bring it back (strength is what shows most)
    rest = grey + gain * colour
    again = float((cast + rest).abs().mean())
    if again > 0:
        rest = rest * min(level.strength / again, HOLD_MAX_LIFT / max(lift * gain, 1.0))
    dreamed = in_range(frame, frame + cast + rest)
    return dreamed, dreamed - frame


@dataclass(frozen=True)
class ShotSettings:
    """How a shot's frames are dreamed (see :func:`dream_sequence`).

    ``keyframe_iterations`` and ``frame_iterations`` are the steps per octave of keyframes and of
    carried frames. ``settle`` brings a keyframe to the strength carried frames settle at, so a
    shot does not start weak and ramp up: after its own dream, the carried-frame update
    (``frame + keep · residual``, ``frame_iterations``) is applied to the keyframe itself
    ``settle`` times, with ``keep`` from :func:`settle_keep`. ``decay`` fades the carry.
    ``temporal_weight`` (λ) adds the temporal term to carried frames whose step has an
    ``anchor``: after every step the image moves λ·c of the way back to where the previous dream,
    moved with the scene, puts it (:class:`Anchor`).

    ``remember`` keeps a :class:`~distdream.frames.memory.Memory` of the dream where the scene held
    still (steps with a :class:`Scene`): a pixel that shows again what was remembered gets that
    dream back, held still.

    ``hold`` keeps every carried frame at its shot's level: the keyframe's (settled) dream sets
    the :class:`Level` and each carried frame is brought back to it by :func:`held` (down freely,
    up by at most :data:`HOLD_MAX_LIFT` per frame, so a dream the motion has mostly wiped out
    regrows over frames instead of being blown up). Without it the carried dream grows into
    itself for a few hundred frames on a still shot and the temporal term slowly drains it
    (figures: the coherence page of the docs). A shot started from a predefined start image is
    not held: its start image is meant to fade.
    """

    keyframe_iterations: int
    frame_iterations: int
    settle: int = 0
    decay: float = 0.9
    temporal_weight: float = 0.0
    hold: bool = False
    remember: bool = False  # keep a Memory of the dream where the scene is still


@dataclass
class ShotState:
    """Where a shot's dream stands: the last frame's residual, the level it holds (None: not
    held) and what it remembers where the scene held still (None: nothing). A handoff passes it
    from one chunk to the next."""

    residual: torch.Tensor | None = None
    level: Level | None = None
    memory: Memory | None = None


def _first_guess(
    step: SequenceStep, residual: torch.Tensor, settings: ShotSettings, memory: Memory | None
) -> tuple[torch.Tensor, int, Anchor | None]:
    """A carried frame's starting image, its steps per octave and its temporal anchor; pixels that
    show what ``memory`` holds there start from (and are held at) its dream — on a still scene
    that is what the carry brings anyway, where a passing object uncovered it, it is not."""
    assert step.carry is not None, "a carried frame has a carry"
    carried = step.carry(residual)
    restore = remembered = None
    if memory is not None and step.scene is not None and not step.scene.camera_moved:
        restore, remembered = memory.recall(step.frame), memory.residual  # (1, 1, H, W), (1, 3, H, W)
        carried = carried + restore * (remembered - carried)
    init = in_range(step.frame, step.frame + carried)  # (1, 3, H, W)
    anchor = None
    if step.anchor is not None:
        target, mask, still = step.anchor(residual)
        if restore is not None and remembered is not None and step.scene is not None:
            target = target + restore * ((step.frame + remembered).clamp(0, 1) - target)
            mask = torch.maximum(mask, restore)
            held_still = step.scene.steady * restore
            still = held_still if still is None else torch.maximum(still, held_still)
        if settings.temporal_weight > 0 or still is not None:
            anchor = Anchor(target, mask, settings.temporal_weight, still)
    return init, settings.frame_iterations, anchor


def _settled(
    dream: Callable[..., torch.Tensor],
    frame: torch.Tensor,
    dreamed: torch.Tensor,
    following: SequenceStep | None,
    settings: ShotSettings,
) -> torch.Tensor:
    """A keyframe's dream after ``settings.settle`` carried-frame updates of itself."""
    keep = settle_keep(dreamed - frame, following, settings.decay)
    for _ in range(settings.settle):
        again = in_range(frame, frame + keep * (dreamed - frame))
        dreamed = dream(again, num_iterations=settings.frame_iterations)
    return dreamed


def dream_sequence(
    dreamer: FrameDreamer,
    steps: Iterable[SequenceStep],
    settings: ShotSettings,
    *,
    generator: torch.Generator,
    start: torch.Tensor | None = None,
    progress: Callable[[int], None] | None = None,
    state: ShotState | None = None,
) -> Iterator[tuple[torch.Tensor, bool]]:
    """Dream frames in order; yields ``(dreamed frame, was keyframe)`` for each step.

    A keyframe is dreamed from the raw frame (the first one from ``start`` when given) with
    ``keyframe_iterations`` per octave, then settled and, with ``hold``, sets the shot's level.
    Every other frame starts from ``frame + carry(previous residual)`` and gets
    ``frame_iterations``: the carried residual already holds the patterns, so fewer steps keep
    them alive and moving with the scene (:class:`ShotSettings` says what each setting does).

    ``state`` continues a sequence another call ended (a handoff) when it holds a residual: the
    first step is then a carried frame, not a keyframe, and its ``level`` is what that sequence
    held (without one, frames are not held until the next keyframe). After each frame ``state``
    holds where this sequence stands, for the next call to continue from.
    """
    dream = partial(dreamer.dream, generator=generator, progress=progress)
    state = state if state is not None else ShotState()
    residual, level, memory = state.residual, state.level, state.memory
    first = True
    upcoming = iter(steps)
    ahead: list[SequenceStep] = []  # a step taken early (a keyframe's settle looks at the next one)
    while (step := ahead.pop() if ahead else next(upcoming, None)) is not None:
        frame = step.frame
        keyframe = step.carry is None or residual is None
        from_start = keyframe and first and start is not None
        if residual is not None and step.carry is not None:
            init, iterations, anchor = _first_guess(step, residual, settings, memory)
        else:
            init, iterations, anchor = (
                (start if from_start and start is not None else frame),
                settings.keyframe_iterations,
                None,
            )
        dreamed = dream(init, num_iterations=iterations, anchor=anchor)
        if keyframe and settings.settle and not from_start:  # a start image is the user's: settling would dissolve it
            following = next(upcoming, None)
            ahead.extend([following] if following is not None else [])
            dreamed = _settled(dream, frame, dreamed, following, settings)
        residual = dreamed - frame
        if keyframe:
            level = None if from_start else Level.of(frame, residual)
            memory = Memory.of(frame, residual) if settings.remember else None
        elif settings.hold and level is not None:
            dreamed, residual = held(frame, residual, level)
        if not keyframe and memory is not None and step.scene is not None:
            # how still, whatever ``steady`` (the map carries it)
            memory.update(frame, residual, step.scene.still / step.scene.steady, step.scene.camera_moved)
        state.residual, state.level, state.memory = residual, level, memory
        first = False
        yield dreamed, keyframe
