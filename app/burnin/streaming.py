"""Summarise an upload while it is still arriving: the bytes go to the file store and, through a
bounded queue, to the parser in a worker thread, so storing and parsing overlap (two cores)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import queue
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

T = TypeVar("T")
_END = b""


class _QueueRaw(io.RawIOBase):
    """A read-only raw stream whose bytes arrive from another thread through a queue."""

    def __init__(self, feed: queue.Queue[bytes]) -> None:
        self.feed = feed
        self.pending = memoryview(b"")
        self.finished = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self.pending and not self.finished:
            block = self.feed.get()
            if block is _END or not block:
                self.finished = True
            else:
                self.pending = memoryview(block)
        n = min(len(buffer), len(self.pending))
        buffer[:n] = self.pending[:n]
        self.pending = self.pending[n:]  # a view: no copy of the rest of the block
        return n


class Tee:
    """Feeds every chunk of an upload to `parse` (run in a thread) as it passes through."""

    def __init__(self, parse: Callable[[io.BufferedReader], T], *, depth: int = 16) -> None:
        self.feed: queue.Queue[bytes] = queue.Queue(maxsize=depth)
        reader = io.BufferedReader(_QueueRaw(self.feed), buffer_size=1 << 20)
        self.result: asyncio.Future[T] = asyncio.get_running_loop().run_in_executor(None, parse, reader)

    def _put(self, block: bytes) -> None:
        """Blocks while the parser is behind (bounded memory), but never after it has stopped."""
        while not self.result.done():
            try:
                self.feed.put(block, timeout=0.1)
                return
            except queue.Full:
                continue

    async def through(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        async for chunk in chunks:
            if self.result.done():  # the parser stopped early (a malformed line): stop reading the upload
                self.result.result()
                return
            if chunk:
                await self._feed(bytes(chunk))
            yield chunk
        await self._feed(_END)

    async def _feed(self, block: bytes) -> None:
        try:
            self.feed.put_nowait(block)  # the usual case: the parser keeps up, no thread hop needed
        except queue.Full:
            await asyncio.to_thread(self._put, block)

    async def abandon(self) -> None:
        """The upload failed (too large, client gone): end the parser's input, ignore its outcome."""
        while not self.result.done():
            try:
                self.feed.put_nowait(_END)
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    self.feed.get_nowait()
            await asyncio.sleep(0.01)
        if not self.result.cancelled():
            self.result.exception()  # retrieved, so asyncio does not report it as never retrieved
