"""Two stages joined the way beets' import pipeline joins them: sequentially (one batch copied,
then stored, then the next — what tests use when they want one thread and a fixed order) or
threaded (production: the copy stage keeps reading the recorder while the store stage re-reads
and commits the previous batch, with a bounded queue between them).

Either way: every batch produced is either consumed or discarded (its staged copies removed),
never lost; when the consumer fails, nothing more is produced; the producer is always closed
(its open readers released) before this returns.

Threaded, the consumer takes every batch waiting in the queue at once and hands them on as one
(``merge``): when the store stage falls behind — eight docks take turns at the vault's one
writer lock — it commits more files per turn instead of holding up the copy, which keeps reading
the recorder's link meanwhile (up to ``DEPTH`` batches ahead).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator
from typing import Any, TypeVar

T = TypeVar("T")
DEPTH = 4  # batches between the stages
MERGE_MAX = 64  # batches handed on as one at most

_END = object()


def run_stages(
    produce: Generator[T, None, None],
    consume: Callable[[T], None],
    discard: Callable[[T], None],
    *,
    threaded: bool,
    merge: Callable[[list[T]], T] | None = None,
) -> tuple[BaseException | None, BaseException | None]:
    """Run ``consume`` on each item of ``produce``; return (producer's error, consumer's).
    ``merge`` (threaded only): makes one item of several waiting ones."""
    if threaded:
        return _threaded(produce, consume, discard, merge)
    return _sequential(produce, consume)


def _sequential(
    produce: Generator[T, None, None], consume: Callable[[T], None]
) -> tuple[BaseException | None, BaseException | None]:
    produced: BaseException | None = None
    consumed: BaseException | None = None
    try:
        for item in produce:
            try:
                consume(item)  # a failing consumer cleans up its own item
            except BaseException as exc:
                consumed = exc
                break
    except BaseException as exc:
        produced = exc
    finally:
        produce.close()
    return produced, consumed


def _threaded(
    produce: Generator[T, None, None],
    consume: Callable[[T], None],
    discard: Callable[[T], None],
    merge: Callable[[list[T]], T] | None,
) -> tuple[BaseException | None, BaseException | None]:
    q: queue.Queue[Any] = queue.Queue(maxsize=DEPTH)
    failed: list[BaseException] = []
    producer_done = threading.Event()

    def consumer() -> None:
        try:
            ended = False
            while not ended:
                item = q.get()
                if item is _END:
                    return
                if merge is not None:
                    items = [item]
                    while len(items) < MERGE_MAX:
                        try:
                            more = q.get_nowait()
                        except queue.Empty:
                            break
                        if more is _END:
                            ended = True
                            break
                        items.append(more)
                    if len(items) > 1:
                        item = merge(items)
                consume(item)
        except BaseException as exc:
            failed.append(exc)
            while True:  # drain so the producer never blocks, and discard what it made
                try:
                    item = q.get(timeout=0.5)
                except queue.Empty:
                    if producer_done.is_set():
                        return
                    continue
                if item is _END:
                    return
                discard(item)

    def put(item: Any) -> bool:
        while True:
            if failed and item is not _END:
                return False
            try:
                q.put(item, timeout=0.5)
                return True
            except queue.Full:
                if item is _END and not thread.is_alive():
                    return False
                continue

    thread = threading.Thread(target=consumer, name="ingest-commit", daemon=False)
    thread.start()
    produced: BaseException | None = None
    try:
        for item in produce:
            if not put(item):
                discard(item)
                break
    except BaseException as exc:
        produced = exc
    finally:
        produce.close()
        put(_END)
        producer_done.set()
        thread.join()
    return produced, failed[0] if failed else None
