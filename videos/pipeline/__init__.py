"""The generation pipeline: submit -> track -> mirror -> poster.

Each step reads its clip from the database, checks the clip is in the state the step
expects, does its network work outside any transaction, and records the outcome with a
model method. Running a step twice does no harm, so a re-delivered queue task, a
restarted worker or the safety net can always carry on where things stopped.

- ``submit``: claims a queued clip and sends it to the provider once.
- ``tracker``: follows provider tasks until they finish.
- ``mirror`` / ``poster``: copy the video into storage, then take a poster frame.
- ``safety``: the safety net that re-queues lost steps.
"""

from videos.pipeline.common import callback_url, client_for_account, enqueue
from videos.pipeline.mirror import mirror_clip
from videos.pipeline.poster import make_poster
from videos.pipeline.safety import resume_stalled
from videos.pipeline.submit import build_request, send, submit_clip
from videos.pipeline.tracker import apply_state, callback_received, track_clip

__all__ = [
    "apply_state",
    "build_request",
    "callback_received",
    "callback_url",
    "client_for_account",
    "enqueue",
    "make_poster",
    "mirror_clip",
    "resume_stalled",
    "send",
    "submit_clip",
    "track_clip",
]
