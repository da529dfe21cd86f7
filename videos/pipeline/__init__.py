"""The generation pipeline: submit -> track -> mirror -> poster.

Each step reads its clip from the database, checks the clip is in the state the step
expects, does its network work outside any transaction, and records the outcome with a
model method. Running a step twice does no harm, so a re-delivered queue task, a
restarted worker or the safety net can always carry on where things stopped.

- ``submit``: claims a queued clip into a free slot of its account and sends it once.
- ``tracker``: the process that sends queued clips and follows every provider task.
- ``mirror`` / ``poster``: queue steps that copy the video into storage and take a poster.
- ``reconcile``: submissions whose answer was lost, and money that does not match videos.
- ``safety``: the safety net that carries on where a killed process stopped.
"""

from videos.pipeline.common import callback_url, client_for_account, enqueue
from videos.pipeline.mirror import mirror_clip
from videos.pipeline.poster import make_poster
from videos.pipeline.safety import resume_stalled
from videos.pipeline.submit import build_request, send, submit_clip
from videos.pipeline.tracker import Tracker, apply_state, callback_received, poll_now

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
    "poll_now",
    "Tracker",
]
