"""Hostile programs through ``run_tests``, run as whoever runs this script (the caller).

tests/test_sandbox.py runs it as root and as an unprivileged user. It reads a JSON object
from stdin (``home``, ``workdir``: caller-owned directories; ``marker``: a unique string) and
finds the secret in its own environment (``GSPO_PROBE_SECRET``). Each program runs first in
the sandbox, then directly, without one, as the caller: the direct run shows what the probe
catches when nothing stops it. Prints one JSON object: per program, what it printed and what
the host looked like afterwards.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

from gspo_repro.verifiers.sandbox import Limits, isolation, run_tests

LIMITS = Limits(wall_s=4.0, cpu_s=4, mem_mb=256, output_bytes=1 << 20, disk_mb=64)

WRITE = """
import json, os
out = {}
for d in DIRS:
    for name, mode in (("victim.txt", "w"), ("new.txt", "x")):
        try:
            with open(os.path.join(d, name), mode) as f:
                f.write("pwned")
            out[os.path.join(d, name)] = "written"
        except OSError as e:
            out[os.path.join(d, name)] = type(e).__name__
print(json.dumps(out))
"""

DISK = """
import errno, json, os
n, error = 0, None
try:
    while n < 256:  # 256 MiB: four times the cap
        with open("fill%d" % n, "wb") as f:
            f.write(b"x" * (OUTPUT_BYTES - 1))  # just under the file-size limit
        n += 1
except OSError as e:
    error = errno.errorcode.get(e.errno, str(e.errno))
print(json.dumps({"files": n, "bytes": n * (OUTPUT_BYTES - 1), "error": error}))
"""

PROC = """
import json, os
me, pids, secret, caller = os.getpid(), [], None, False
for p in os.listdir("/proc"):
    if not p.isdigit() or int(p) == me:
        continue
    pids.append(int(p))
    try:
        with open("/proc/%s/environ" % p, "rb") as f:
            for kv in f.read().split(b"\\0"):
                if kv.startswith(b"GSPO_PROBE_SECRET="):
                    secret = kv.split(b"=", 1)[1].decode()
        with open("/proc/%s/cmdline" % p, "rb") as f:
            caller = caller or b"hostile_probe.py" in f.read()
    except OSError:
        pass
print(json.dumps({"pids": sorted(pids), "secret": secret, "caller_seen": caller}))
"""

DAEMON = """
import os, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):  # a daemon lets go of its parent's stdio
            os.dup2(null, fd)
        os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(30)", MARKER])
    os._exit(0)
time.sleep(0.5)  # the daemon is up before the program exits
print("spawned")
"""

NETWORK = """
import ctypes, json, struct
libc = ctypes.CDLL(None, use_errno=True)  # below the interpreter's socket guard
fd = libc.socket(2, 1, 0)
addr = struct.pack("<H", 2) + struct.pack(">H", PORT) + bytes([127, 0, 0, 1]) + bytes(8)
rc = libc.connect(fd, addr, len(addr))
err = ctypes.get_errno()
if rc == 0:
    libc.send(fd, b"exfiltrated", 11, 0)
print(json.dumps({"rc": rc, "errno": err}))
"""

SECRETS = """
import json, os
try:
    with open(SECRET_FILE) as f:
        content = f.read()
except OSError as e:
    content = type(e).__name__
print(json.dumps({"env": os.environ.get("GSPO_PROBE_SECRET"), "file": content}))
"""


class Listener:
    """A TCP listener on 127.0.0.1 that counts connections and keeps what they sent."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.received, self.connections = b"", 0
        self.stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            conn.settimeout(1)
            try:
                self.received += conn.recv(1024)
            except OSError:
                pass
            conn.close()

    def close(self):
        self.stop = True
        self.thread.join()
        self.sock.close()


class FreeSpace:
    """The largest drop in free space of some filesystems while it runs (polled)."""

    def __init__(self, paths):
        self.paths = paths
        self.start = {p: shutil.disk_usage(p).free for p in paths}
        self.drop, self.stop = 0, False
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def _poll(self):
        while not self.stop:
            for p in self.paths:
                self.drop = max(self.drop, self.start[p] - shutil.disk_usage(p).free)
            time.sleep(0.01)

    def close(self):
        self.stop = True
        self.thread.join()
        return self.drop


def survivors(marker: str) -> list[int]:
    """Host pids whose command line holds ``marker``."""
    found = []
    for p in os.listdir("/proc"):
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    found.append(int(p))
        except (OSError, ValueError):
            pass
    return found


def files(dirs) -> dict:
    """Every file under ``dirs`` with its content."""
    out = {}
    for d in dirs:
        for name in sorted(os.listdir(d)):
            with open(os.path.join(d, name)) as f:
                out[os.path.join(d, name)] = f.read()
    return out


def sandboxed(source: str) -> dict:
    [r] = run_tests(source, [{"input": "", "output": None}], LIMITS)
    return {"verdict": r.verdict.value, "detail": r.detail, "stdout": r.stdout}


def direct(source: str) -> dict:
    """``source`` run as the caller with the caller's environment: no sandbox."""
    with tempfile.TemporaryDirectory() as scratch:
        p = subprocess.run([sys.executable, "-c", source], cwd=scratch, capture_output=True,
                           text=True, timeout=20)
    return {"code": p.returncode, "stdout": p.stdout, "stderr": p.stderr[-500:]}


def main() -> None:
    cfg = json.load(sys.stdin)
    home, workdir, marker = cfg["home"], cfg["workdir"], cfg["marker"]
    secret = os.environ["GSPO_PROBE_SECRET"]
    secret_file = os.path.join(home, "secret.txt")
    for d in (home, workdir):
        with open(os.path.join(d, "victim.txt"), "w") as f:
            f.write("original")
    with open(os.open(secret_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
        f.write(secret)
    listener = Listener()
    programs = {
        "write": WRITE.replace("DIRS", repr([home, workdir])),
        "disk": DISK.replace("OUTPUT_BYTES", str(LIMITS.output_bytes)),
        "proc": PROC,
        "daemon": DAEMON.replace("MARKER", repr(marker)),
        "network": NETWORK.replace("PORT", str(listener.port)),
        "secrets": SECRETS.replace("SECRET_FILE", repr(secret_file)),
    }
    out = {"uid": os.getuid(), "isolation": isolation(), "limits_disk_mb": LIMITS.disk_mb}
    for how, run in (("sandboxed", sandboxed), ("direct", direct)):
        for name, source in programs.items():
            if how == "direct" and name == "disk":
                continue  # 256 MiB on the host disk proves nothing the cap check does not
            before = listener.connections
            free = FreeSpace(sorted({tempfile.gettempdir(), home, workdir}))
            rec = run(source)
            rec["free_space_drop"] = free.close()
            if name == "network":  # a connection made is counted once the listener accepts
                time.sleep(0.3)
            rec["survivors"] = survivors(marker)
            rec["connections"] = listener.connections - before
            rec["files"] = files([home, workdir])
            for pid in rec["survivors"]:  # a direct run's daemon
                os.kill(pid, 9)
            for d in (home, workdir):  # the next program meets the same files
                with open(os.path.join(d, "victim.txt"), "w") as f:
                    f.write("original")
                if os.path.exists(os.path.join(d, "new.txt")):
                    os.unlink(os.path.join(d, "new.txt"))
            out.setdefault(how, {})[name] = rec
        out.setdefault("left_in_tmp", {})[how] = sorted(
            n for n in os.listdir(tempfile.gettempdir()) if n.startswith("gspo-sbx-"))
    listener.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
