"""Faults between a consumer and its queue: lost acknowledgements, crashes at the ack.

:class:`FaultyQueue` wraps any :class:`~distlab.services.serverless.queue.DurableQueue`
and behaves like it, except that

* with probability ``lost_acks`` an ``ack`` never reaches the queue, although the
  consumer is told it did (the reply was fine, the request was lost on the way; or the
  consumer died just before sending it): the message comes back after the visibility
  timeout, already processed once;
* the acks numbered in ``crash_at_acks`` (1 = the first ack) raise
  :class:`~distlab.errors.ServiceCrash` instead: the process dies after the function
  did its work and before the queue heard about it.

Draws come from ``rng`` (seeded), so a run replays exactly.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from distlab.errors import ServiceCrash
from distlab.services.serverless.queue import DeadLetter, DurableQueue, Message, QueueCounts

__all__ = ["FaultyQueue"]


class FaultyQueue(DurableQueue):
    """A queue whose acknowledgements get lost, or whose consumer dies while acknowledging.

    Args:
        queue: the real queue (its options, clock and data are used as they are).
        lost_acks: probability in [0, 1] that an ack is silently lost.
        crash_at_acks: the ack numbers (1-based) at which the consumer crashes.
        rng: the generator of the draws; default ``random.Random(0)``.

    Attributes:
        acks: acks attempted so far; lost: acks lost; crashed: crashes raised.

    Raises:
        ValueError: ``lost_acks`` outside [0, 1], or an ack number < 1.
    """

    def __init__(
        self,
        queue: DurableQueue,
        *,
        lost_acks: float = 0.0,
        crash_at_acks: Iterable[int] = (),
        rng: random.Random | None = None,
    ) -> None:
        if not isinstance(queue, DurableQueue):
            raise ValueError(f"queue must be a DurableQueue, got {type(queue).__name__}")
        super().__init__(
            visibility_timeout=queue.visibility_timeout,
            max_deliveries=queue.max_deliveries,
            clock=queue.clock,
        )
        if isinstance(lost_acks, bool) or not (
            isinstance(lost_acks, int | float) and 0 <= lost_acks <= 1
        ):
            raise ValueError(f"lost_acks must be a probability in [0, 1], got {lost_acks!r}")
        crashes = set(crash_at_acks)
        if any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in crashes):
            raise ValueError(f"crash_at_acks must hold ack numbers >= 1, got {sorted(crashes)!r}")
        self.inner = queue
        self.lost_acks = float(lost_acks)
        self.crash_at_acks = crashes
        self.rng = rng if rng is not None else random.Random(0)
        self.acks = 0
        self.lost = 0
        self.crashed = 0

    def __repr__(self) -> str:
        return f"FaultyQueue({self.inner!r}, lost_acks={self.lost_acks:g})"

    def _send(self, body: bytes) -> str:
        return self.inner.send(body)

    def _receive(self, max_messages: int) -> list[Message]:
        return self.inner.receive(max_messages)

    def _ack(self, message: Message) -> bool:
        self.acks += 1
        if self.acks in self.crash_at_acks:
            self.crashed += 1
            raise ServiceCrash(f"the consumer died while sending ack #{self.acks}")
        if self.rng.random() < self.lost_acks:
            self.lost += 1
            return True  # the consumer believes it; the queue never heard it
        return self.inner.ack(message)

    def _release(self, message: Message) -> bool:
        return self.inner.release(message)

    def _dead_letter(self, message: Message, reason: str) -> bool:
        return self.inner.dead_letter(message, reason)

    def dead_letters(self) -> list[DeadLetter]:
        """The real queue's dead letters."""
        return self.inner.dead_letters()

    def counts(self) -> QueueCounts:
        """The real queue's counts."""
        return self.inner.counts()

    def close(self) -> None:
        """Close the real queue."""
        self.inner.close()
