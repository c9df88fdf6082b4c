"""Real-time streaming of the ultrasound cine-clip model: a node risk after every frame as frames arrive.

`ClipStream` (clip_stream) encodes each frame once and reruns only the temporal part of ClipNet over the frames
seen so far or a sliding window; `file_frames` / `device_frames` (sources) release frames from a file played at
its own rate (or as fast as it decodes) or from a capture device. Importing this package imports torch, so
`import lymphcast` does not import it: the CLI imports it inside its command.
"""

from .clip_stream import ClipStream, StreamSummary, StreamUpdate, summarise
from .sources import Released, device_frames, file_frames

__all__ = ["ClipStream", "StreamUpdate", "StreamSummary", "summarise", "Released", "file_frames", "device_frames"]
