"""Run untrusted Python programs on stdin/stdout tests in a sandbox.

A program's tests share one sandboxed interpreter (up to ``CHUNK`` tests each), which forks a
fresh process per test: the sandbox is set up once, not once per test. Every test gets:

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
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass

NOBODY = 65534
CHUNK = 16  # tests per sandboxed interpreter (each holds three fds per test)

# The trusted runner: runs first inside the sandbox, as the sandbox user, with the run's
# directory as its working directory and the program's stdio files as inherited fds. It
# forks once per test; the child takes its test's fds as stdin/stdout/stderr, closes every
# other fd, enters a fresh directory, takes the per-test rlimits, loses its sockets and runs
# the program as __main__, exiting the way the interpreter would. The runner reports each
# exit status on its stdout and, in a PID namespace (where it is init), kills everything
# left in the namespace before the next test.
_RUNNER = r"""
import atexit, json, os, resource, select, signal, socket, _socket, sys, time, traceback
spec = json.loads(sys.argv[1])
lim, in_ns = spec["limits"], spec["namespace"]
for res, value in ((resource.RLIMIT_CPU, spec["runner_cpu_s"]), (resource.RLIMIT_AS, lim["mem"]),
                   (resource.RLIMIT_NPROC, lim["nproc"]), (resource.RLIMIT_CORE, 0)):
    resource.setrlimit(res, (value, value))
try:  # non-dumpable: a program of the same user cannot open this runner's fds via /proc
    import ctypes
    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)
except Exception:
    pass
src = open("prog.py", encoding="utf-8").read()

def report(**rec):
    os.write(1, (json.dumps(rec) + "\n").encode())

def child(i, fds):
    os.setsid()
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    os.closerange(3, 1 << 16)
    os.mkdir("run%d" % i, 0o700)
    os.chdir("run%d" % i)
    os.environ["HOME"] = os.getcwd()
    # CPU: SIGXCPU at the soft limit (a timeout verdict), SIGKILL only a second later
    resource.setrlimit(resource.RLIMIT_CPU, (lim["cpu_s"], lim["cpu_s"] + 1))
    for res, value in ((resource.RLIMIT_AS, lim["mem"]),
                       (resource.RLIMIT_FSIZE, lim["output_bytes"]),
                       (resource.RLIMIT_NPROC, lim["nproc"]),
                       (resource.RLIMIT_NOFILE, lim["nofile"]), (resource.RLIMIT_CORE, 0)):
        resource.setrlimit(res, (value, value))
    sys.stdin = open(0, "r", encoding="utf-8", closefd=False)
    sys.stdout = open(1, "w", encoding="utf-8", closefd=False)
    sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
    def denied(*a, **k):
        raise OSError(101, "network is disabled in the sandbox")
    socket.socket = _socket.socket = socket.create_connection = socket.socketpair = denied
    sys.argv = ["prog.py"]
    status = 0
    try:
        main = {"__name__": "__main__", "__builtins__": __builtins__}
        exec(compile(src, "prog.py", "exec"), main)
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            status = e.code or 0
        else:
            print(e.code, file=sys.stderr)
            status = 1
    except BaseException:
        traceback.print_exc()
        status = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            status = status or 120
    os._exit(status & 0xFF)

def exited(pid, timeout):
    # whether pid exits within timeout seconds (it is left unreaped)
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):  # no pidfd here: poll
        deadline, nap = time.monotonic() + timeout, 0.0005
        while time.monotonic() < deadline:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
                return True
            time.sleep(nap)
            nap = min(nap * 2, 0.01)
        return False
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)

def fork():
    # The sandbox user's process count is shared: a fork bomb's remains, still being torn
    # down in another namespace, can refuse a fork for a moment. Wait rather than crash.
    for _ in range(100):
        try:
            return os.fork()
        except BlockingIOError:
            time.sleep(0.02)
    return os.fork()

for i, fds in enumerate(spec["fds"]):
    pid = fork()
    if pid == 0:
        try:
            child(i, fds)
        finally:
            os._exit(121)
    report(start=i, pid=pid)
    timed_out = not exited(pid, lim["wall_s"])
    if timed_out:
        os.killpg(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    try:  # whatever the program forked dies with it
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
    if in_ns:  # init of the PID namespace: kill(-1) reaches every other process in it
        for _ in range(2):
            try:
                os.kill(-1, signal.SIGKILL)
            except OSError:
                pass
        while True:
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                break
    code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    report(test=i, code=code, timed_out=timed_out)
    if spec["stop_on_error"] and (timed_out or code != 0):
        break
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


def _command(python: str, spec: dict) -> list[str]:
    run = [python, "-I", "-S", "-c", _RUNNER, json.dumps(spec)]
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


def _same_output(got: str, want: str) -> bool:
    """Equal up to trailing whitespace on each line and trailing blank lines."""
    norm = lambda s: "\n".join(line.rstrip() for line in s.rstrip().splitlines())  # noqa: E731
    return norm(got) == norm(want)


def _read(path: str, cap: int) -> str:
    try:
        with open(path, "rb") as f:
            return f.read(cap).decode("utf-8", errors="replace")
    except OSError:
        return ""


def _verdict(code: int, timed_out: bool, paths: dict, expected: str | None,
             limits: Limits) -> TestResult:
    out = _read(paths["out"], limits.output_bytes)
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
        last = _read(paths["err"], 4096).strip().splitlines()[-1:] or [f"exit code {code}"]
        return TestResult(Verdict.CRASH, last[0][:300], out[:2000])
    if expected is None or _same_output(out, expected):
        return TestResult(Verdict.PASS, "", out[:2000])
    return TestResult(Verdict.FAIL, "wrong output", out[:2000])


def _wait(proc: subprocess.Popen, timeout: float) -> None:
    """Wait up to ``timeout`` s for ``proc`` to exit; a pidfd wakes at once, unlike polling."""
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        return
    try:
        select.select([fd], [], [], timeout)
    finally:
        os.close(fd)


def _run_chunk(source: str, base: str, first: int, tests, limits: Limits,
               stop_on_error: bool) -> list[TestResult]:
    """One sandboxed runner over ``tests`` (numbered from ``first``): a verdict for each it ran.

    The stdio files sit in a root-only directory; the runner and the program only ever hold
    their fds, passed down, so no program can reach another test's files.
    """
    workdir = os.path.join(base, f"chunk{first}")
    os.mkdir(workdir, 0o700)
    with open(os.path.join(workdir, "prog.py"), "w", encoding="utf-8") as f:
        f.write(source)
    if _drops_privileges():
        os.chown(workdir, NOBODY, NOBODY)
        os.chown(os.path.join(workdir, "prog.py"), NOBODY, NOBODY)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": workdir, "LANG": "C.UTF-8",
           "PYTHONIOENCODING": "utf-8", "PYTHONHASHSEED": "0"}
    paths = [{n: os.path.join(base, "io", f"{first + i}.{n}") for n in ("in", "out", "err")}
             for i in range(len(tests))]
    files = []
    try:
        for p, test in zip(paths, tests, strict=True):
            with open(p["in"], "w", encoding="utf-8") as f:
                f.write(test.get("input", ""))
            files += [open(p["in"], "rb"), open(p["out"], "wb"), open(p["err"], "wb")]
        fds = [[f.fileno() for f in files[k:k + 3]] for k in range(0, len(files), 3)]
        # The runner sets its own rlimits before anything untrusted runs: no preexec_fn, so
        # Popen can vfork, which stays fast when this process is large (a loaded engine).
        spec = {"fds": fds, "namespace": isolation() == "namespaces",
                "stop_on_error": stop_on_error, "runner_cpu_s": limits.cpu_s * len(tests) + 5,
                "limits": {"wall_s": limits.wall_s, "cpu_s": limits.cpu_s,
                           "mem": limits.mem_mb << 20, "output_bytes": limits.output_bytes,
                           "nproc": limits.nproc, "nofile": limits.nofile}}
        report = os.path.join(base, "io", f"chunk{first}.jsonl")
        with open(report, "wb") as frep:
            try:
                proc = subprocess.Popen(
                    _command(sandbox_python(), spec), cwd=workdir, stdin=subprocess.DEVNULL,
                    stdout=frep, stderr=subprocess.DEVNULL, env=env, start_new_session=True,
                    pass_fds=[fd for trio in fds for fd in trio])
            except OSError as e:
                return [TestResult(Verdict.CRASH, f"could not start: {e}")] * len(tests)
            try:
                _wait(proc, len(tests) * (limits.wall_s + 1) + 10)
            finally:
                try:  # the runner's group; in a PID namespace, everything in it dies with it
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                proc.wait()
    finally:
        for f in files:
            f.close()
    started, done = {}, {}
    for line in _read(report, 1 << 20).splitlines():
        try:
            rec = json.loads(line)
            if "start" in rec:
                started[int(rec["start"])] = int(rec["pid"])
            else:
                done[int(rec["test"])] = (int(rec["code"]), bool(rec["timed_out"]))
        except (ValueError, KeyError, TypeError):
            continue  # a line the runner never finished writing
    results = []
    for i in range(len(tests)):
        if i in done:
            results.append(_verdict(*done[i], paths[i], tests[i].get("output"), limits))
            continue
        if i in started:  # the runner died under this test (killed by it, or over time)
            try:
                os.killpg(started[i], signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            results.append(TestResult(Verdict.CRASH, "sandbox runner killed",
                                      _read(paths[i]["out"], 2000)))
        break
    return results


def run_tests(source: str, tests: list[dict] | tuple[dict, ...], limits: Limits | None = None,
              stop_on_failure: bool = False) -> list[TestResult]:
    """Run ``source`` on each test (``{"input", "output"}``) and return a verdict each.

    One sandboxed interpreter serves up to ``CHUNK`` tests, forking a fresh process per
    test. With ``stop_on_failure`` the tests after the first non-pass are not run and get
    the verdict of the failing one (a reward needs all tests to pass, so this saves time).
    ``output`` may be None to only run the program. Never raises for the program's behaviour.
    """
    limits = limits or Limits()
    tests = list(tests)
    results: list[TestResult] = []
    try:
        base = tempfile.mkdtemp(prefix="gspo-sbx-")
        os.chmod(base, 0o711)  # the sandbox user may enter its run dir, not list the rest
        os.mkdir(os.path.join(base, "io"), 0o700)
    except OSError as e:
        return [TestResult(Verdict.CRASH, f"no work dir: {e}") for _ in tests]
    try:
        for first in range(0, len(tests), CHUNK):
            chunk = tests[first:first + CHUNK]
            got = _run_chunk(source, base, first, chunk, limits, stop_on_failure)
            results += got
            failed = next((r for r in got if r.verdict is not Verdict.PASS), None)
            if len(got) < len(chunk):  # the runner stopped early: on an error, or killed
                results += [failed or TestResult(Verdict.CRASH, "sandbox runner killed")] * (
                    len(tests) - len(results))
                break
            if stop_on_failure and failed:
                results += [failed] * (len(tests) - len(results))
                break
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return results
