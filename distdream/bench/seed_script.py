"""A seed-style DeepDream video script: the reference the start-up benchmark measures against.

How such tools are written: one process imports torch and builds the model once, then, frame by
frame in order, decodes, warps the previous dream onto the frame by optical flow (bilinear, no
mask, no decay), runs the full classifier forward with a hook on the layer, steps up the gradient
over the octaves, and encodes. It imports nothing of distdream beyond the bundled model's module
tree and weights path, and prints when its start-up ended and when it finished (seconds since
the interpreter started):

    python -m distdream.bench.seed_script IN OUT --layer _blocks.9 --steps 4 --octaves 2

``--threads 1 --frames N`` runs it as one CPU worker of the engine runs (one torch and OpenCV
thread) over the first N frames: the start-up bench runs two of those at once to measure how
much of a second core this machine gives a second worker.
"""

from __future__ import annotations

import time

START = time.perf_counter()

import argparse  # noqa: E402  (the clock starts first)
import json  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from ..models.efficientnet_lite import EfficientNetLite0, bundled_weights_path  # noqa: E402


def _dream(
    model: torch.nn.Module, acts: list, image: torch.Tensor, steps: int, octaves: int, scale: float, lr: float
) -> torch.Tensor:
    base = (image - 0.5) / 0.5  # the model's [-1, 1] input
    detail = torch.zeros_like(base)
    h, w = base.shape[-2:]
    for o in reversed(range(octaves)):
        size = (max(1, round(h / scale**o)), max(1, round(w / scale**o)))
        level = F.interpolate(base, size=size, mode="bilinear", align_corners=False)
        if detail.shape[-2:] != size:
            detail = F.interpolate(detail, size=size, mode="bilinear", align_corners=False)
        x = (level + detail).detach()
        for _ in range(steps):
            dy, dx = torch.randint(-8, 9, (2,)).tolist()
            x = torch.roll(x, (dy, dx), (-2, -1)).requires_grad_(True)
            acts.clear()
            model(x)  # the whole classifier, as a seed script runs it
            acts[0].pow(2).mean().backward()
            g = x.grad
            assert g is not None
            x = torch.roll((x + lr * g / g.abs().mean().clamp_min(1e-8)).detach(), (-dy, -dx), (-2, -1)).clamp(-1, 1)
        detail = x - level
    return (x * 0.5 + 0.5).clamp(0, 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--layer", default="_blocks.9")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--octaves", type=int, default=2)
    parser.add_argument("--scale", type=float, default=1.4)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--start-only", action="store_true", help="stop after building the model")
    parser.add_argument("--threads", type=int, default=None, help="torch and OpenCV threads (default: theirs)")
    parser.add_argument("--frames", type=int, default=None, help="stop after this many frames")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    model = EfficientNetLite0()
    model.load_state_dict(torch.load(bundled_weights_path(), map_location="cpu", weights_only=True))
    model.eval().requires_grad_(False)
    acts: list[torch.Tensor] = []
    model.get_submodule(args.layer).register_forward_hook(lambda _m, _i, out: acts.append(out))
    started = time.perf_counter() - START
    if args.start_only:
        print(json.dumps({"start": started, "end": started}))
        return

    import av
    import cv2
    import numpy as np

    if args.threads is not None:
        cv2.setNumThreads(args.threads)

    with av.open(args.input) as src, av.open(args.output, "w") as dst:
        stream_in = src.streams.video[0]
        out = dst.add_stream("libx264", rate=stream_in.average_rate or 24)
        out.width, out.height, out.pix_fmt = stream_in.width, stream_in.height, "yuv420p"
        prev_gray = prev_dream = None
        for n, frame in enumerate(src.decode(stream_in)):
            if n == args.frames:
                break
            rgb = frame.to_ndarray(format="rgb24")
            gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
            start = rgb.astype(np.float32) / 255
            if prev_dream is not None:  # the seed rule: the previous dream warped onto this frame
                assert prev_gray is not None
                flow = cv2.calcOpticalFlowFarneback(gray, prev_gray, None, 0.5, 3, 15, 3, 5, 1.2, 0)
                h, w = gray.shape
                grid = np.dstack(np.meshgrid(np.arange(w), np.arange(h))).astype(np.float32) + flow
                start = cv2.remap(
                    prev_dream, grid[..., 0], grid[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
                )
            image = torch.from_numpy(start).permute(2, 0, 1)[None]
            dreamed = _dream(model, acts, image, args.steps, args.octaves, args.scale, args.lr)
            prev_dream, prev_gray = dreamed[0].permute(1, 2, 0).numpy().copy(), gray
            pixels = (prev_dream * 255 + 0.5).astype(np.uint8)
            for packet in out.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                dst.mux(packet)
        for packet in out.encode():
            dst.mux(packet)
    print(json.dumps({"start": started, "end": time.perf_counter() - START}))


if __name__ == "__main__":
    main()
