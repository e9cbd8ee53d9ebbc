"""Blocking calls off the event loop thread, at less cost per call than anyio's thread pool.

THE way a request handler runs blocking work (a database transaction, a file, a template that
reads the database): `await offload.run(fn, *args, **kwargs)`.

A submission must not run on the event loop: it may wait on SQLite's write lock. Starlette's
`run_in_threadpool` (anyio `to_thread.run_sync`) hands it to a worker thread, but costs about
a third of the event loop's own time per API submission (py-spy --gil): a `CapacityLimiter`
acquired with a cancel-shielded checkpoint, several `RunVar` lookups, and a `queue.Queue` whose
`put` notifies a `threading.Condition` in Python. `offload` does the same hop with a C
`SimpleQueue`, a token deque as its idle count, and one `call_soon_threadsafe` back.

What it keeps from `run_in_threadpool`: the call runs in a copy of the caller's context
variables; its exception (any type) is raised to the awaiting coroutine; at most `MAX_WORKERS`
calls run at once (more wait their turn, as behind anyio's limiter). What differs: a caller
cancelled while its call runs is not held until the call ends (anyio shields it); the call
still runs to its end, and its result is dropped. uvicorn does not cancel a request because
its client went away, so a submission under way is still committed and answered as before.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import threading
from collections import deque
from queue import SimpleQueue
from typing import Any, Callable, TypeVar

T = TypeVar("T")

MAX_WORKERS = 40
"""Calls running at once; anyio's default thread limiter has the same number of tokens."""


class Offload:
    """A pool of daemon threads for blocking calls awaited from any event loop.

    One per process (`offload` below): threads are started when no idle one is left, up to
    `max_workers`, and are kept (an idle thread blocked on the queue costs no CPU).
    """

    def __init__(self, max_workers: int = MAX_WORKERS, *, name: str = "docket-offload"):
        self.max_workers = max_workers
        self.name = name
        self._reset()
        os.register_at_fork(after_in_child=self._reset)  # a child has none of the parent's threads

    def _reset(self) -> None:
        self._jobs: SimpleQueue[tuple[Any, ...]] = SimpleQueue()
        # One item per thread that waits for a job: deque append/pop are atomic, so this
        # counts idle threads without a lock.
        self._idle: deque[None] = deque()
        self._started = 0
        self._start_lock = threading.Lock()

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """`fn(*args, **kwargs)` on a pool thread; its result, or its exception raised here."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((loop, future, contextvars.copy_context(), fn, args, kwargs))
        try:
            self._idle.pop()
        except IndexError:
            self._start_thread()
        return await future

    def _start_thread(self) -> None:
        with self._start_lock:
            if self._started >= self.max_workers:
                return  # the job waits until a thread finishes its current one
            self._started += 1
            number = self._started
        threading.Thread(target=self._work, name=f"{self.name}-{number}", daemon=True).start()

    def _work(self) -> None:
        # A new thread was started for a job already queued: it counts as idle only once it
        # has run one (else a later caller would count on it while it is busy).
        jobs, idle = self._jobs, self._idle
        while True:
            loop, future, context, fn, args, kwargs = jobs.get()
            try:
                result, error = context.run(fn, *args, **kwargs), None
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
                result, error = None, exc
            # Idle before answering: the answer may bring the next call at once, which this
            # thread, about to wait for a job again, should take rather than a new thread.
            idle.append(None)
            try:
                loop.call_soon_threadsafe(_settle, future, result, error)
            except RuntimeError:
                pass  # the loop was closed meanwhile: nobody awaits the answer any more
            del loop, future, context, fn, args, kwargs, result, error  # drop references while idle


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is None:
        future.set_result(result)
    elif isinstance(error, StopIteration):  # a Future refuses it (it would end the awaiting coroutine)
        future.set_exception(RuntimeError(f"StopIteration raised in an offloaded call: {error!r}"))
    else:
        future.set_exception(error)


offload = Offload()
"""The process's pool: `await offload.run(fn, *args, **kwargs)`."""

__all__ = ["MAX_WORKERS", "Offload", "offload"]
