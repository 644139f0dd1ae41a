"""Video I/O with PyAV: probe/index, exact frame-range reads, encoding, lossless joining, colour.

The only package that imports ``av`` (with :func:`distdream.samples.write_clip`, which makes test
and demo clips). Its modules, one operation each:

- :func:`probe` (``index``) builds a :class:`VideoIndex` from a demux-only pass (no decoding but the first
  frame): exact frame count, every presentation timestamp, keyframe positions, audio streams,
  colour tags. Container metadata is not trusted (MKV stores no frame count; MP4 edit lists lie).
- ``imageseq``: numbered PNG/TIFF/JPEG files as a video (a printf pattern or a directory, with a
  given frame rate), read frame by frame and written one file per frame (:class:`ImageWriter`).
- :func:`read_frames` (``read``) yields exactly frames ``[start, end)`` as upright RGB arrays: it seeks to the
  keyframe at or before ``start``, decodes forward, drops what precedes ``start`` and stops at
  ``end``. Frames are identified by timestamp, so the result equals a sequential decode.
- ``colour``: the input's tags (:class:`Colour`) and the exact Y'CbCr ↔ RGB conversion with its
  matrix and range; ``formats``: the output :class:`Format` (codec, pixel format, options, tags)
  a job writes, resolved once from the settings and the input.
- :class:`SegmentWriter` (``write``) encodes frames to a segment. Every segment of a job is opened with
  identical settings and starts on a keyframe, so segments can be joined by remuxing.
- :func:`concat` (``join``) joins segments by remuxing packets (no re-encode), gives every frame the input's
  own timestamp (variable frame rates survive), copies the input's audio streams, and writes to a
  temporary name that is renamed into place.

Odd frame sizes: 4:2:0 cannot represent them (H.264's cropping unit is 2 pixels in each
direction, so x264 refuses an odd crop rectangle). Odd-sized video is therefore encoded 4:4:4;
either way the output has the input's exact size.
"""

from __future__ import annotations

from ..config import Encoding
from .colour import Colour
from .formats import Format, available_codecs, format_for, output_format
from .imageseq import ImageWriter
from .index import check_output_container, packet_digest, probe
from .join import concat
from .naming import frame_file, is_pattern, is_sequence
from .read import read_frames
from .record import AudioStreamInfo, VideoIndex
from .write import SegmentWriter, add_audio_stream, add_video_stream, open_writer

__all__ = [
    "AudioStreamInfo",
    "Colour",
    "Encoding",
    "Format",
    "ImageWriter",
    "SegmentWriter",
    "VideoIndex",
    "add_audio_stream",
    "add_video_stream",
    "available_codecs",
    "check_output_container",
    "concat",
    "format_for",
    "frame_file",
    "is_pattern",
    "is_sequence",
    "open_writer",
    "output_format",
    "packet_digest",
    "probe",
    "read_frames",
]
