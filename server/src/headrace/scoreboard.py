"""Shared memory between the master and its workers: heartbeats and open-connection counts.

The master reads heartbeats to find hung workers; workers read each other's connection
counts so that new connections go to the least busy worker instead of whichever happens
to win the accept race (one worker holding most keep-alive connections halves throughput).

A worker that is not accepting (at its connection limit, or stopping) publishes
:data:`IDLE_COUNT`, so no sibling ever defers a connection to it.
"""

from __future__ import annotations

import mmap
import struct
import time

MAX_SLOTS = 1024
_DOUBLE = struct.Struct("d")
_COUNTS_AT = MAX_SLOTS * 8
_HIGH_AT = MAX_SLOTS * 16  # one double: 1 + the highest slot ever handed out
FRESH = 1.5  # seconds: an older heartbeat means busy, hung or gone
IDLE_COUNT = 1e9  # published by a worker that does not accept at the moment


class Scoreboard:
    def __init__(self) -> None:
        self.shm = mmap.mmap(-1, MAX_SLOTS * 16 + 8)
        self._structs: dict[int, struct.Struct] = {}

    # master side
    def reset(self, slot: int) -> None:
        _DOUBLE.pack_into(self.shm, slot * 8, time.monotonic())
        _DOUBLE.pack_into(self.shm, _COUNTS_AT + slot * 8, 0.0)
        if slot + 1 > self.slots_in_use():
            _DOUBLE.pack_into(self.shm, _HIGH_AT, float(slot + 1))

    def clear(self, slot: int) -> None:
        _DOUBLE.pack_into(self.shm, slot * 8, 0.0)

    def stamp(self, slot: int) -> float:
        return _DOUBLE.unpack_from(self.shm, slot * 8)[0]

    def slots_in_use(self) -> int:
        """How many slots a balance check must look at (slots are handed out lowest first)."""
        return int(_DOUBLE.unpack_from(self.shm, _HIGH_AT)[0])

    # worker side
    def beat(self, slot: int) -> None:
        _DOUBLE.pack_into(self.shm, slot * 8, time.monotonic())

    def publish(self, slot: int, connections: float) -> None:
        _DOUBLE.pack_into(self.shm, _COUNTS_AT + slot * 8, connections)

    def least_loaded_sibling(self, slot: int, now: float) -> float:
        """Fewest connections held by another live, accepting worker (infinity if none).

        Reads only the slots in use (a handful); the worker asks once per accept batch.
        """
        count = self.slots_in_use()
        unpack = self._structs.get(count)
        if unpack is None:
            unpack = self._structs[count] = struct.Struct(f"{count}d")
        stamps = unpack.unpack_from(self.shm, 0)
        counts = unpack.unpack_from(self.shm, _COUNTS_AT)
        best = float("inf")
        for index in range(count):
            held = counts[index]
            if held < best and index != slot and now - stamps[index] < FRESH:
                best = held
        return best
