"""The master process: pre-forks workers on shared sockets and keeps them healthy.

It never imports the application, so every worker it forks loads the code afresh; that is
what makes SIGHUP a real code reload.  Liveness comes from heartbeat stamps in shared
memory (:mod:`headrace.scoreboard`); a worker whose stamp is older than ``--timeout`` is
killed and replaced.

Signals: HUP graceful reload, TERM graceful stop, INT/QUIT fast stop, TTIN/TTOU add or
remove a worker, USR1 reopen access logs.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from headrace.bootstrap import worker_main
from headrace.config import Config
from headrace.errors import BOOT_FAILURE
from headrace.scoreboard import MAX_SLOTS, Scoreboard
from headrace.sockets import sd_notify

log = logging.getLogger("headrace.master")


@dataclass
class WorkerProc:
    pid: int
    slot: int
    generation: int
    booted: bool = False
    stop_sent: float = 0.0
    killed: bool = False


class Master:
    def __init__(self, config: Config, sockets: list[socket.socket], unix_paths: list[str],
                 reload_config: Callable[[], Config] | None = None) -> None:
        self.config = config
        self.reload_config = reload_config
        self.sockets = sockets
        self.unix_paths = unix_paths
        self.target = config.workers
        self.workers: dict[int, WorkerProc] = {}
        self.generation = 0
        self.reloading = False
        self.announced_ready = False
        self.stopping = ""  # "", "graceful" or "fast"
        self.stop_deadline = 0.0
        self.exit_code = 0
        self.spawn_after = 0.0
        self.signals: list[int] = []
        self.scoreboard = Scoreboard()
        self.free_slots = list(range(MAX_SLOTS - 1, -1, -1))
        self.sig_r, self.sig_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.ready_r, self.ready_w = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(self.ready_r, False)

    # -- signals -----------------------------------------------------------------------
    def _install_signals(self) -> None:
        signal.set_wakeup_fd(self.sig_w, warn_on_full_buffer=False)
        for signum in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGTTIN,
                       signal.SIGTTOU, signal.SIGUSR1, signal.SIGCHLD):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: object) -> None:
        self.signals.append(signum)

    def _handle_signals(self) -> None:
        while self.signals:
            signum = self.signals.pop(0)
            if signum == signal.SIGCHLD:
                continue
            if signum == signal.SIGHUP and not self.stopping:
                log.info("SIGHUP: reloading workers")
                usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
                sd_notify(f"RELOADING=1\nMONOTONIC_USEC={usec}")
                self._reread_config()
                self.generation += 1
                self.reloading = True
            elif signum == signal.SIGTERM:
                if self.stopping != "fast":
                    self._stop("graceful")
            elif signum in (signal.SIGINT, signal.SIGQUIT):
                self._stop("fast")
            elif signum == signal.SIGTTIN:
                self.target += 1
                log.info("SIGTTIN: %d workers", self.target)
            elif signum == signal.SIGTTOU:
                self.target = max(1, self.target - 1)
                log.info("SIGTTOU: %d workers", self.target)
            elif signum == signal.SIGUSR1:
                for pid in self.workers:
                    self._kill(pid, signal.SIGUSR1)

    def _reread_config(self) -> None:
        """On SIGHUP the new workers also get the current command line and config file."""
        if self.reload_config is None:
            return
        try:
            config = self.reload_config()
        except Exception as exc:
            log.error("config not reloaded, keeping the previous one: %s", exc)
            return
        if config.bind != self.config.bind:
            log.warning("bind addresses changed in the config: that needs a restart; keeping the sockets")
        config.bind = self.config.bind
        self.config = config
        self.target = config.workers

    def _stop(self, how: str) -> None:
        if self.stopping == how:
            return
        log.info("%s stop", how)
        sd_notify("STOPPING=1")
        self.stopping = how
        now = time.monotonic()
        if how == "graceful":
            self.stop_deadline = now + self.config.graceful_timeout
            for worker in self.workers.values():
                self._term(worker)
        else:
            self.stop_deadline = now + 2.0
            for pid in self.workers:
                self._kill(pid, signal.SIGQUIT)

    # -- workers -----------------------------------------------------------------------
    def _kill(self, pid: int, signum: int) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    def _term(self, worker: WorkerProc) -> None:
        if not worker.stop_sent:
            worker.stop_sent = time.monotonic()
            self._kill(worker.pid, signal.SIGTERM)

    def _spawn(self) -> None:
        slot = self.free_slots.pop()
        self.scoreboard.reset(slot)
        generation = self.generation
        pid = os.fork()
        if pid == 0:  # the child never returns into the master's code
            code = 1
            try:
                code = self._child(slot)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                log.exception("worker crashed")
            finally:
                logging.shutdown()
                os._exit(code)
        self.workers[pid] = WorkerProc(pid, slot, generation)
        log.debug("spawned worker %d (generation %d)", pid, generation)

    def _child(self, slot: int) -> int:
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGTTIN,
                       signal.SIGTTOU, signal.SIGUSR1, signal.SIGCHLD):
            signal.signal(signum, signal.SIG_DFL)
        for fd in (self.sig_r, self.sig_w, self.ready_r):
            os.close(fd)
        return worker_main(self.config, self.sockets, slot, self.scoreboard, self.ready_w)

    def _read_ready(self) -> None:
        try:
            data = os.read(self.ready_r, 4096)
        except BlockingIOError:
            return
        for (pid,) in struct.iter_unpack("=I", data[: len(data) - len(data) % 4]):
            worker = self.workers.get(pid)
            if worker is not None:
                worker.booted = True
                log.info("worker %d ready", pid)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            worker = self.workers.pop(pid, None)
            if worker is None:
                continue
            self.scoreboard.clear(worker.slot)
            self.free_slots.append(worker.slot)
            code = os.waitstatus_to_exitcode(status)
            if worker.stop_sent or self.stopping:
                log.debug("worker %d exited (%s)", pid, code)
                continue
            if code == BOOT_FAILURE and not worker.booted:
                self._boot_failed(worker)
                continue
            if code == 0:  # it chose to go: --max-requests reached
                log.info("worker %d retired; replacing it", pid)
                continue
            how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
            log.warning("worker %d %s; replacing it", pid, how)

    def _boot_failed(self, worker: WorkerProc) -> None:
        older = [w for w in self.workers.values()
                 if w.generation < worker.generation and w.booted and not w.stop_sent]
        if older and worker.generation == self.generation:
            log.error("reload failed: the new workers cannot load the application; keeping the old ones")
            for w in list(self.workers.values()):
                if w.generation == self.generation:
                    self._term(w)
            self.generation = max(w.generation for w in older)
            self.reloading = False
            sd_notify("READY=1")
        elif not any(w.booted and not w.stop_sent for w in self.workers.values()):
            log.error("worker failed to boot; shutting down")
            self.exit_code = BOOT_FAILURE
            self._stop("fast")
        else:
            self.spawn_after = time.monotonic() + 1.0

    def _check_timeouts(self, now: float) -> None:
        timeout = self.config.timeout
        for worker in self.workers.values():
            if worker.killed:
                continue
            if worker.stop_sent:
                if now - worker.stop_sent > self.config.graceful_timeout:
                    log.warning("worker %d did not stop in time; killing it", worker.pid)
                    worker.killed = True
                    self._kill(worker.pid, signal.SIGKILL)
                continue
            if timeout > 0:
                stamp = self.scoreboard.stamp(worker.slot)
                if now - stamp > timeout:
                    log.error("worker %d timed out after %.0fs; killing it", worker.pid, now - stamp)
                    worker.killed = True
                    self._kill(worker.pid, signal.SIGKILL)

    def _maintain(self, now: float) -> None:
        current = [w for w in self.workers.values() if w.generation == self.generation and not w.stop_sent]
        if now >= self.spawn_after:
            for _ in range(self.target - len(current)):
                if not self.free_slots:
                    break
                self._spawn()
        if len(current) > self.target:
            for worker in current[: len(current) - self.target]:
                self._term(worker)
        old = [w for w in self.workers.values() if w.generation != self.generation and not w.stop_sent]
        if old:
            ready = sum(1 for w in current if w.booted)
            for worker in old[max(0, self.target - ready) :]:
                self._term(worker)
        elif self.reloading and all(w.booted for w in current) and not any(
            w.generation != self.generation for w in self.workers.values()
        ):
            self.reloading = False
            log.info("reload complete")
            sd_notify("READY=1")
        if not self.announced_ready and current and all(w.booted for w in current):
            self.announced_ready = True
            sd_notify(f"READY=1\nMAINPID={os.getpid()}")

    # -- main loop ---------------------------------------------------------------------
    def run(self) -> int:
        self._install_signals()
        log.info("master %d starting %d workers", os.getpid(), self.target)
        try:
            while True:
                now = time.monotonic()
                if self.stopping:
                    if not self.workers:
                        break
                    if now > self.stop_deadline:
                        for worker in self.workers.values():
                            if not worker.killed:
                                worker.killed = True
                                self._kill(worker.pid, signal.SIGKILL)
                else:
                    self._check_timeouts(now)
                    self._maintain(now)
                try:
                    readable, _, _ = select.select([self.sig_r, self.ready_r], [], [], 0.25)
                except InterruptedError:
                    readable = []
                if self.sig_r in readable:
                    try:
                        while os.read(self.sig_r, 4096):
                            pass
                    except BlockingIOError:
                        pass
                if self.ready_r in readable:
                    self._read_ready()
                self._handle_signals()
                self._reap()
        finally:
            self._cleanup()
        log.info("master %d exiting", os.getpid())
        return self.exit_code

    def _cleanup(self) -> None:
        for sock in self.sockets:
            sock.close()
        for path in self.unix_paths:
            try:
                os.unlink(path)
            except OSError:
                pass
        if self.config.pid:
            try:
                os.unlink(self.config.pid)
            except OSError:
                pass
