"""What a worker runs on frames: decode, flow, carry, dream in order, encode. No Ray here.

- :mod:`.pipeline`  one chunk's frame range: the three stages below on threads of their own;
- :mod:`.reader`    decodes frames and computes their motion ahead of the dreamer;
- :mod:`.flow`      optical flow, consistency masks, cuts and camera motion between two frames;
- :mod:`.steps`     how the dream reaches each frame (carried, held where still, how many steps);
- :mod:`.carry`     warping and masking the carried dream on the network's device;
- :mod:`.sequence`  dreaming a shot's frames in order at a held level (:mod:`.chroma`: its colour);
- :mod:`.memory`    the shot's memory of its dream where the scene held still;
- :mod:`.relay`     a crossfaded chain's start, relayed from the shot's earlier chains;
- :mod:`.lanes`     several chunks of one worker dreamed as one batch;
- :mod:`.encode`    encoding dreamed frames into a chunk's pieces.
"""
