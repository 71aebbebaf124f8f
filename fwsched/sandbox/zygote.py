"""Fresh isolation: the zygote, a worker that forks one child per invocation.

It never runs a handler itself: it imported server.py once, and each child starts
from that freshly imported module without paying for an interpreter start and an
import. Children are forked ahead of their invocation; a child that dies before it
sends its result is reported to the parent (``exited``) by the zygote, which learns
what its children do from the notes they write on a pipe.

Imported by the worker (worker.py): its imports are paid on every worker start, so
they stay light (os, select, signal; gc only when used).
"""

from __future__ import annotations

import os
import select
import signal
from collections import deque
from typing import TYPE_CHECKING

from fwsched.sandbox import protocol
from fwsched.sandbox.hygiene import die_with
from fwsched.sandbox.streams import flush

if TYPE_CHECKING:
    from fwsched.sandbox.worker import Worker

SPARES = 3  # fresh isolation: children forked ahead of their invocation (bench: 3 > 2 > 1)


def serve_fresh(worker: Worker) -> None:
    """The zygote: keep forked children ready; report the ones that die unfinished.

    Children are forked before their invocation arrives (``SPARES`` of them), so
    a fork and its start-up are paid while earlier invocations run, not by the
    next one. Only one child may read the command pipe at a time (it also
    carries the replies to schedule calls): the right to read it is the byte in
    the baton pipe, which a child passes on once it has sent its result, or the
    zygote when a child died before that.
    """
    import gc

    baton_r, baton_w = os.pipe()
    notes_r, notes_w = os.pipe()  # children -> zygote: S(tarted) / D(one) / Q(uit)
    os.set_blocking(notes_r, False)
    flush()  # nothing buffered may be written twice
    gc.freeze()  # children's collections leave the imported objects' pages alone
    os.write(baton_w, b"B")
    try:
        for _ in range(SPARES):
            _fork_child(worker, baton_r, baton_w, notes_w)
        notes = _Notes(notes_r)
        while True:
            kind, seq, pid = notes.next()
            if kind == b"Q":
                return  # the parent is gone
            _fork_child(worker, baton_r, baton_w, notes_w)  # replaces the one that started
            _, status = os.waitpid(pid, 0)
            if not notes.done(seq):
                code = os.waitstatus_to_exitcode(status)
                ended = {"seq": seq, "code": code, "signal": None}
                if code < 0:
                    ended.update(code=None, signal=-code)
                # Before the baton: the next child's frames must not interleave with it.
                worker.send(protocol.encode("exited", ended))
                os.write(baton_w, b"B")
    finally:
        # However the zygote ends, the spares waiting for the baton end with it.
        os.killpg(0, signal.SIGKILL)


def _fork_child(worker: Worker, baton_r: int, baton_w: int, notes_w: int) -> None:
    zygote = os.getpid()
    if os.fork():
        return
    code = 0
    try:
        die_with(zygote)  # a fork does not inherit the zygote's settings
        os.read(baton_r, 1)  # wait for our turn
        message = worker.reader.read()
        while message is not None and message[0] != "invoke":
            message = worker.reader.read()  # a stray reply to nobody
        if message is None:
            os.write(notes_w, _note(b"Q", 0))
        else:
            fields = message[1]
            seq = int(fields["seq"])
            os.write(notes_w, _note(b"S", seq))
            worker.send(worker.run(fields))
            os.write(baton_w, b"B")
            os.write(notes_w, _note(b"D", seq))
    except BaseException:
        code = 70
    finally:
        os._exit(code)


def _note(kind: bytes, seq: int) -> bytes:
    return kind + seq.to_bytes(8, "big") + os.getpid().to_bytes(4, "big")


class _Notes:
    """The zygote's view of the notes its children write: kind, seq and pid, 13 bytes."""

    SIZE = 13

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._data = b""
        self._queue: deque[tuple[bytes, int, int]] = deque()
        self._done: set[int] = set()

    def next(self) -> tuple[bytes, int, int]:
        """The next S(tarted) or Q(uit) note, waiting for it."""
        while not self._queue:
            select.select([self.fd], [], [])
            self._pull()
        return self._queue.popleft()

    def done(self, seq: int) -> bool:
        """Whether the (exited) child that ran ``seq`` finished: it wrote D before exiting."""
        self._pull()
        if seq in self._done:
            self._done.discard(seq)
            return True
        return False

    def _pull(self) -> None:
        while True:
            try:
                chunk = os.read(self.fd, 4096)
            except BlockingIOError:
                break
            self._data += chunk
            if len(chunk) < 4096:
                break
        size = self.SIZE
        while len(self._data) >= size:
            note, self._data = self._data[:size], self._data[size:]
            kind, seq, pid = note[:1], int.from_bytes(note[1:9], "big"), int.from_bytes(note[9:])
            if kind == b"D":
                self._done.add(seq)
            else:
                self._queue.append((kind, seq, pid))
