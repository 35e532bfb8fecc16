"""RQ workers that stop at once when their queues are empty or they are told to stop.

RQ listens for commands on a pub/sub thread that waits up to 60 s for a message. On the way
out it sends UNSUBSCRIBE and only then tells that thread to stop, and redis-py's
`PubSubWorkerThread.stop()` waits for the thread to finish. When the reply to UNSUBSCRIBE
arrives before the stop flag is set (a busy machine), the thread goes back to its 60 s wait,
and the worker (a burst run, or one shutting down on SIGTERM) hangs for a minute. Setting the
flag first, without waiting, lets the reply end the thread at once.
"""

from __future__ import annotations

from rq import SimpleWorker, Worker


class _StopsPromptly:
    def unsubscribe(self) -> None:
        thread = getattr(self, "pubsub_thread", None)
        if thread is not None:
            thread.stop(timeout=0)  # sets the stop flag only: no wait
        super().unsubscribe()  # type: ignore[misc]


class PortfolioWorker(_StopsPromptly, Worker):
    """The worker `portfolio worker` runs: each job in a forked process of its own."""


class PortfolioSimpleWorker(_StopsPromptly, SimpleWorker):
    """The same, running jobs in its own process (for tests and one-off runs)."""
