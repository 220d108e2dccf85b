"""Run untrusted Python programs on stdin/stdout tests, one sandboxed process per test.

Every run gets the following:

- a fresh temporary working directory, deleted afterwards;
- its own process group, killed whole on the wall timeout;
- rlimits on CPU time, address space, file size (which caps stdout and stderr), open files
  and processes;
- an environment with nothing inherited: no tokens, no keys, no proxies.

Where the kernel allows it (``isolation() == "namespaces"``), each run also gets new network,
PID and mount namespaces:

- No network: only a loopback interface that is down.
- When the program exits, the kernel kills everything it forked.
- An empty tmpfs covers /tmp, /var/tmp and /dev/shm.
- When the caller is root, the program runs as ``nobody`` with no_new_privs, so it can
  neither write nor read the caller's files nor signal its processes.

Where the kernel does not allow it, ``isolation() == "rlimits"``:

- Sockets are disabled inside the interpreter. A determined program can get around that.
- Children that call setsid can outlive the process group. Run untrusted code at scale only
  with ``namespaces``.

``run_tests`` never raises because of what the program does: every outcome is a verdict.
"""

from __future__ import annotations

import enum
import functools
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass

NOBODY = 65534
# Runs first inside the sandboxed interpreter: no sockets, then the program as __main__.
_PRELUDE = """\
import socket as _s, _socket as _ss
def _denied(*a, **k):
    raise OSError(101, "network is disabled in the sandbox")
_s.socket = _ss.socket = _s.create_connection = _s.socketpair = _denied
del _s, _ss, _denied
import sys as _sys
_sys.argv = ["prog.py"]
_src = open("prog.py", encoding="utf-8").read()
exec(compile(_src, "prog.py", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})
"""


class Verdict(enum.Enum):
    """Outcome of one program on one test."""

    PASS = "pass"
    FAIL = "fail"  # ran to completion, wrong output
    TIMEOUT = "timeout"  # wall or CPU time limit
    CRASH = "crash"  # non-zero exit, signal, memory or output limit, syntax error


@dataclass(frozen=True)
class TestResult:
    """One test's verdict with a short reason and the (truncated) output seen."""

    verdict: Verdict
    detail: str = ""
    stdout: str = ""


@dataclass(frozen=True)
class Limits:
    """Resource limits for one run."""

    wall_s: float = 4.0
    cpu_s: int = 4
    mem_mb: int = 512
    output_bytes: int = 1 << 20
    nproc: int = 64
    nofile: int = 64


def _world_executable(path: str) -> bool:
    """Whether a user other than the owner can reach and execute ``path``."""
    path = os.path.realpath(path)
    parts = path.split(os.sep)
    for i in range(2, len(parts) + 1):
        mode = os.stat(os.sep.join(parts[:i]) or os.sep).st_mode
        if not mode & 0o001:
            return False
    return True


@functools.cache
def sandbox_python() -> str:
    """An interpreter the sandbox user can execute: this one if reachable, else the system's."""
    if os.geteuid() != 0 or _world_executable(sys.executable):
        return sys.executable
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.path.exists(candidate) and _world_executable(candidate):
            return candidate
    return sys.executable


def _ns_prefix() -> list[str]:
    base = ["unshare", "--net", "--pid", "--fork", "--kill-child", "--mount",
            "--propagation", "private"]
    return base if os.geteuid() == 0 else [*base[:1], "--user", "--map-root-user", *base[1:]]


@functools.cache
def isolation() -> str:
    """``namespaces`` when unshare can make net/pid/mount namespaces here, else ``rlimits``."""
    if not shutil.which("unshare"):
        return "rlimits"
    try:
        ok = subprocess.run([*_ns_prefix(), "sh", "-c", "mount -t tmpfs none /tmp"],
                            capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    if ok and os.geteuid() == 0 and not shutil.which("setpriv"):
        ok = False
    return "namespaces" if ok else "rlimits"


def _drops_privileges() -> bool:
    return os.geteuid() == 0 and shutil.which("setpriv") is not None


def _command(python: str) -> list[str]:
    run = [python, "-I", "-S", "-c", _PRELUDE]
    drop = (["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
             "--no-new-privs", "--"] if _drops_privileges() else [])
    if isolation() != "namespaces":
        return [*drop, *run]
    # The shell's working directory is the run's directory; covering /tmp after the chdir
    # keeps it reachable as "." while hiding everything else under /tmp.
    inner = ("mount -t tmpfs -o size=16m none /tmp && "
             "{ mount -t tmpfs -o size=16m none /var/tmp; mount -t tmpfs -o size=16m none "
             "/dev/shm; } 2>/dev/null; exec \"$@\"")
    return [*_ns_prefix(), "sh", "-c", inner, "sandbox", *drop, *run]


def _limit(limits: Limits):
    def apply():
        mem = limits.mem_mb << 20
        for res, value in ((resource.RLIMIT_CPU, limits.cpu_s), (resource.RLIMIT_AS, mem),
                           (resource.RLIMIT_FSIZE, limits.output_bytes),
                           (resource.RLIMIT_NPROC, limits.nproc),
                           (resource.RLIMIT_NOFILE, limits.nofile), (resource.RLIMIT_CORE, 0)):
            resource.setrlimit(res, (value, value))

    return apply


def _same_output(got: str, want: str) -> bool:
    """Equal up to trailing whitespace on each line and trailing blank lines."""
    norm = lambda s: "\n".join(line.rstrip() for line in s.rstrip().splitlines())  # noqa: E731
    return norm(got) == norm(want)


def _run_one(cmd: list[str], source: str, base: str, index: int, stdin: str,
             expected: str | None, limits: Limits) -> TestResult:
    # A fresh directory per test: nothing a run leaves behind reaches the next test. The
    # stdio files sit in a root-only sibling directory; the program only holds their fds.
    workdir = os.path.join(base, f"run{index}")
    os.mkdir(workdir, 0o700)
    with open(os.path.join(workdir, "prog.py"), "w", encoding="utf-8") as f:
        f.write(source)
    if _drops_privileges():
        os.chown(workdir, NOBODY, NOBODY)
        os.chown(os.path.join(workdir, "prog.py"), NOBODY, NOBODY)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": workdir, "LANG": "C.UTF-8",
           "PYTHONIOENCODING": "utf-8", "PYTHONHASHSEED": "0"}
    paths = {n: os.path.join(base, "io", f"{index}.{n}") for n in ("in", "out", "err")}
    with open(paths["in"], "w", encoding="utf-8") as f:
        f.write(stdin)
    with open(paths["in"], "rb") as fin, open(paths["out"], "wb") as fout, \
            open(paths["err"], "wb") as ferr:
        try:
            proc = subprocess.Popen(cmd, cwd=workdir, stdin=fin, stdout=fout, stderr=ferr,
                                    env=env, start_new_session=True, close_fds=True,
                                    preexec_fn=_limit(limits))
        except OSError as e:
            return TestResult(Verdict.CRASH, f"could not start: {e}")
        try:
            proc.wait(timeout=limits.wall_s)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            # Leftover children in the group die with it, whatever the program's exit.
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            code = proc.wait()
    out = _read(paths["out"], limits.output_bytes)
    err = _read(paths["err"], 4096)
    if timed_out:
        return TestResult(Verdict.TIMEOUT, f"wall time over {limits.wall_s}s", out[:2000])
    # Python ignores SIGXFSZ and raises EFBIG instead, so judge the cap by the file itself.
    if os.path.getsize(paths["out"]) >= limits.output_bytes:
        return TestResult(Verdict.CRASH, "output limit", out[:2000])
    if code < 0:
        sig = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        why = {"SIGXCPU": "cpu time limit", "SIGXFSZ": "output limit"}.get(sig, f"killed by {sig}")
        verdict = Verdict.TIMEOUT if sig == "SIGXCPU" else Verdict.CRASH
        return TestResult(verdict, why, out[:2000])
    if code != 0:
        last = err.strip().splitlines()[-1:] or [f"exit code {code}"]
        return TestResult(Verdict.CRASH, last[0][:300], out[:2000])
    if expected is None or _same_output(out, expected):
        return TestResult(Verdict.PASS, "", out[:2000])
    return TestResult(Verdict.FAIL, "wrong output", out[:2000])


def _read(path: str, cap: int) -> str:
    try:
        with open(path, "rb") as f:
            return f.read(cap).decode("utf-8", errors="replace")
    except OSError:
        return ""


def run_tests(source: str, tests: list[dict] | tuple[dict, ...], limits: Limits | None = None,
              stop_on_failure: bool = False) -> list[TestResult]:
    """Run ``source`` once per test (``{"input", "output"}``) and return a verdict each.

    With ``stop_on_failure`` the remaining tests after the first non-pass are not run and get
    the verdict of the failing one (a reward needs all tests to pass, so this saves time).
    ``output`` may be None to only run the program. Never raises for the program's behaviour.
    """
    limits = limits or Limits()
    cmd = _command(sandbox_python())
    results: list[TestResult] = []
    try:
        base = tempfile.mkdtemp(prefix="gspo-sbx-")
        os.chmod(base, 0o711)  # the sandbox user may enter its run dir, not list the rest
        os.mkdir(os.path.join(base, "io"), 0o700)
    except OSError as e:
        return [TestResult(Verdict.CRASH, f"no work dir: {e}") for _ in tests]
    try:
        for i, test in enumerate(tests):
            if stop_on_failure and results and results[-1].verdict is not Verdict.PASS:
                results.append(results[-1])
                continue
            results.append(_run_one(cmd, source, base, i, test.get("input", ""),
                                    test.get("output"), limits))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return results
