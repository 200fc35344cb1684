"""Shared memory between the master and its workers: heartbeats and open-connection counts.

The master reads heartbeats to find hung workers; workers read each other's connection
counts so that new connections go to the least busy worker instead of whichever happens
to win the accept race (one worker holding most keep-alive connections halves throughput).
"""

from __future__ import annotations

import mmap
import struct
import time

MAX_SLOTS = 1024
_DOUBLE = struct.Struct("d")
_COUNTS_AT = MAX_SLOTS * 8
_SCAN = 64  # slots compared when balancing; slots are handed out lowest first
_SCAN_STRUCT = struct.Struct(f"{_SCAN}d")
FRESH = 1.5  # seconds: an older heartbeat means busy, hung or gone
IDLE_COUNT = 1e9  # published by a worker that no longer accepts


class Scoreboard:
    def __init__(self) -> None:
        self.shm = mmap.mmap(-1, MAX_SLOTS * 16)

    # master side
    def reset(self, slot: int) -> None:
        _DOUBLE.pack_into(self.shm, slot * 8, time.monotonic())
        _DOUBLE.pack_into(self.shm, _COUNTS_AT + slot * 8, 0.0)

    def clear(self, slot: int) -> None:
        _DOUBLE.pack_into(self.shm, slot * 8, 0.0)

    def stamp(self, slot: int) -> float:
        return _DOUBLE.unpack_from(self.shm, slot * 8)[0]

    # worker side
    def beat(self, slot: int) -> None:
        _DOUBLE.pack_into(self.shm, slot * 8, time.monotonic())

    def publish(self, slot: int, connections: float) -> None:
        _DOUBLE.pack_into(self.shm, _COUNTS_AT + slot * 8, connections)

    def least_loaded_sibling(self, slot: int, now: float) -> float:
        """Fewest connections held by another live, accepting worker (infinity if none)."""
        stamps = _SCAN_STRUCT.unpack_from(self.shm, 0)
        counts = _SCAN_STRUCT.unpack_from(self.shm, _COUNTS_AT)
        best = float("inf")
        for index, (stamp, count) in enumerate(zip(stamps, counts, strict=True)):
            if count < best and index != slot and now - stamp < FRESH:
                best = count
        return best
