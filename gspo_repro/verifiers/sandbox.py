"""Run untrusted Python programs on stdin/stdout tests in a sandbox.

A program's tests share one sandboxed interpreter (up to ``CHUNK`` tests each), which forks a
fresh process per test: the sandbox is set up once, not once per test. In every mode each
test gets:

- a fresh working directory, emptied after the test;
- its own process group, killed whole on the wall timeout;
- rlimits on CPU time, address space, file size (which caps stdout and stderr), open files
  and processes;
- an environment with nothing inherited: no tokens, no keys, no proxies;
- its stdin, stdout and stderr as inherited fds of files in a directory only the caller can
  open, so no program reaches another test's files;
- sockets disabled inside the interpreter (a program can get around that through libc;
  a network namespace is what holds).

The environment variable ``GSPO_SANDBOX`` chooses the mode (a variable, because lm-eval runs
the scorers in its own process); ``isolation()`` names the mode in use and every eval report
records it:

- ``bwrap`` (the default, ``auto``): one bubblewrap sandbox per runner, the same whether the
  caller is root or not (root first drops to ``nobody``, then starts bwrap like any user):

  - The filesystem is read-only, and holds only /usr (/bin, /lib, ... as on the host), a few
    files of /etc and the interpreter's own install directory. The caller's home, the
    repository, the host's /tmp, /run and /sys are not there at all.
  - The run directories sit on a tmpfs of ``Limits.disk_mb`` (64 MiB, of which 1 MiB is
    /dev/shm): the only place the program can write, and all it can fill.
  - A fresh /proc for a new PID namespace in which the runner is init: what a test leaves
    running dies before the next test, the rest dies with the runner, and the runner dies
    with its caller.
  - New network (loopback only), IPC, UTS and cgroup namespaces; a new session; all
    capabilities dropped, no_new_privs, no further user namespaces; a minimal /dev.

- ``unshare`` (weaker, by name only): new network, PID and mount namespaces from
  unshare(1), with small tmpfs over /tmp, /var/tmp and /dev/shm; the run directories are on
  the host's disk, uncapped, and the host's /proc stays visible. As root the program runs as
  ``nobody``; as an ordinary user it keeps the caller's rights over the caller's files (it
  can overwrite the home directory and read its secrets).
- ``rlimits`` (weakest, by name only): the per-test limits above and nothing else; children
  that call setsid outlive the test. As root the program runs as ``nobody`` (with setpriv).

Where the mode asked for cannot run here (bwrap missing, or failing its self-test),
``run_tests`` raises ``SandboxUnavailable`` rather than run the code with less isolation.
Otherwise ``run_tests`` never raises because of what the program does: every outcome is a
verdict.
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
MODES = ("bwrap", "unshare", "rlimits")  # strongest first
_SHM_MB = 1  # of Limits.disk_mb, the tmpfs on /dev/shm (POSIX semaphores need a little)
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_ETC_FILES = ("/etc/ld.so.cache", "/etc/localtime", "/etc/passwd", "/etc/group")
_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
        "PYTHONIOENCODING": "utf-8", "PYTHONHASHSEED": "0"}

# The trusted runner: runs first inside the sandbox, as the sandbox user, with the run
# directory as its working directory, the program's source and stdio files as inherited fds.
# It forks once per test; the child takes its test's fds as stdin/stdout/stderr, closes every
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
with open(spec["source_fd"], encoding="utf-8") as f:  # closed before any program runs
    src = f.read()

def report(**rec):
    os.write(1, (json.dumps(rec) + "\n").encode())

report(ready=1)  # before the first fork: no program can stop this line

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

def wipe(top):
    # Empty top: what a test wrote goes before the next test, for the run directories share
    # one small tmpfs. Iterative, and the program's own dirs only (symlinks are unlinked).
    stack, dirs = [top], []
    while stack:
        d = stack.pop()
        try:
            os.chmod(d, 0o700)  # a directory the program locked is still its own
            entries = list(os.scandir(d))
        except OSError:
            continue
        dirs.append(d)
        for e in entries:
            try:
                if e.is_dir(follow_symlinks=False):
                    stack.append(e.path)
                else:
                    os.unlink(e.path)
            except OSError:
                pass
    for d in reversed(dirs[1:]):
        try:
            os.rmdir(d)
        except OSError:
            pass

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
    for top in spec["wipe"]:
        wipe(top)
    if spec["stop_on_error"] and (timed_out or code != 0):
        break
"""


class SandboxUnavailable(RuntimeError):
    """The sandbox asked for cannot run here: code is refused rather than run less isolated."""


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
    disk_mb: int = 64  # bwrap: the tmpfs the program may write, /dev/shm's 1 MiB included

    def __post_init__(self):
        if self.disk_mb <= _SHM_MB:
            raise ValueError(f"disk_mb {self.disk_mb} leaves nothing for the run directory "
                             f"(/dev/shm takes {_SHM_MB} MiB of it)")


def _world_executable(path: str) -> bool:
    """Whether a user other than the owner can reach and execute ``path``."""
    path = os.path.realpath(path)
    parts = path.split(os.sep)
    for i in range(2, len(parts) + 1):
        mode = os.stat(os.sep.join(parts[:i]) or os.sep).st_mode
        if not mode & 0o001:
            return False
    return True


def _own_python() -> str:
    """This interpreter's real executable, outside any venv (the sandbox sees no venv)."""
    return os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)


@functools.cache
def sandbox_python() -> str:
    """An interpreter the sandbox user can execute: this one if reachable, else the system's."""
    own = _own_python()
    if os.geteuid() != 0 or _world_executable(own):
        return own
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.path.exists(candidate) and _world_executable(candidate):
            return os.path.realpath(candidate)
    return own


def _python_dirs(python: str) -> list[str]:
    """Where ``python`` is installed, outside the system directories bwrap binds anyway."""
    dirs = {os.path.dirname(os.path.dirname(python))}
    if python == _own_python():  # its standard library may sit under another prefix
        dirs |= {sys.base_prefix, sys.base_exec_prefix}
    dirs = {os.path.realpath(d) for d in dirs}
    inside = lambda d, top: d == top or d.startswith(top + "/")  # noqa: E731
    return sorted(d for d in dirs
                  if d != "/" and not any(inside(d, top) for top in _SYSTEM_DIRS))


def _tool(name: str) -> str:
    """``name`` as found on the caller's PATH: the one checked is the one run, whatever the
    sandbox's own PATH."""
    found = shutil.which(name)
    return os.path.abspath(found) if found else name


def _to_nobody() -> list[str]:
    return [_tool("setpriv"), f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
            "--no-new-privs", "--"]


def _bwrap_prefix(python: str, limits: Limits) -> list[str]:
    """The bwrap command up to ``--``; its run directory, /tmp, is the working directory."""
    argv = [_tool("bwrap"), "--unshare-all", "--unshare-user", "--disable-userns", "--as-pid-1",
            "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--clearenv"]
    for key, value in {**_ENV, "HOME": "/tmp"}.items():
        argv += ["--setenv", key, value]
    for d in _SYSTEM_DIRS:  # merged-/usr hosts have symlinks here, others directories
        if os.path.islink(d):
            argv += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            argv += ["--ro-bind", d, d]
    for f in _ETC_FILES:
        argv += ["--ro-bind-try", f, f]
    for d in _python_dirs(python):
        argv += ["--ro-bind", d, d]
    argv += ["--proc", "/proc", "--dev", "/dev",
             "--size", str(_SHM_MB << 20), "--tmpfs", "/dev/shm",
             "--size", str((limits.disk_mb - _SHM_MB) << 20), "--tmpfs", "/tmp",
             "--remount-ro", "/dev", "--remount-ro", "/", "--chdir", "/tmp"]
    # root starts bwrap as nobody: bwrap run by root maps the sandbox user to root outside
    return [*_to_nobody(), *argv] if os.geteuid() == 0 else argv


def _ns_prefix() -> list[str]:
    base = [_tool("unshare"), "--net", "--pid", "--fork", "--kill-child", "--mount",
            "--propagation", "private"]
    return base if os.geteuid() == 0 else [*base[:1], "--user", "--map-root-user", *base[1:]]


@functools.cache
def _unavailable(mode: str) -> str:
    """Why ``mode`` cannot run here and what would fix it, from one trivial run of it; empty
    when it can run."""
    if mode == "rlimits":
        return ""
    tool = "bwrap" if mode == "bwrap" else "unshare"
    if not shutil.which(tool):
        return (f"{tool} is not installed: install "
                + ("bubblewrap (Debian/Ubuntu: apt-get install bubblewrap)" if mode == "bwrap"
                   else "util-linux"))
    if os.geteuid() == 0 and not shutil.which("setpriv"):
        return "setpriv is not installed, and root must drop to nobody: install util-linux"
    if mode == "bwrap":
        try:
            said = subprocess.run([_tool("bwrap"), "--version"], capture_output=True, text=True,
                                  timeout=10).stdout.split()
            version = tuple(int(x) for x in said[-1].split(".")[:2])
        except (OSError, subprocess.SubprocessError, ValueError, IndexError):
            version = ()
        if version < (0, 8):  # --size came in 0.7, --disable-userns in 0.8
            return (f"bwrap {'.'.join(map(str, version)) or 'of unknown version'} is older than "
                    f"0.8, which --size and --disable-userns need: install a newer bubblewrap")
    python = sandbox_python()
    cmd = ([*_bwrap_prefix(python, Limits()), "--", python, "-I", "-S", "-c", "pass"]
           if mode == "bwrap" else [*_ns_prefix(), "sh", "-c", "mount -t tmpfs none /tmp"])
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=30, env=_ENV, cwd="/")
    except (OSError, subprocess.SubprocessError) as e:
        return f"{tool} did not run: {e}"
    if proc.returncode:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines() or ["no message"]
        need = ("; it needs unprivileged user namespaces (sysctl user.max_user_namespaces > 0; "
                "on Ubuntu also kernel.apparmor_restrict_unprivileged_userns=0)"
                if mode == "bwrap" else "")
        return f"{tool} failed its self-test ({err[-1][:200]}){need}"
    return ""


def isolation() -> str:
    """The sandbox mode code runs under: ``bwrap``, ``unshare`` or ``rlimits``.

    ``GSPO_SANDBOX`` names it (``auto``, the default, means ``bwrap``); the module docstring
    says what each mode guarantees. Raises ``SandboxUnavailable`` where that mode cannot run.
    """
    asked = os.environ.get("GSPO_SANDBOX", "").strip().lower() or "auto"
    mode = "bwrap" if asked == "auto" else asked
    if mode not in MODES:
        raise SandboxUnavailable(f"GSPO_SANDBOX={asked!r}: expected one of auto, "
                                 f"{', '.join(MODES)}")
    why = _unavailable(mode)
    if why:
        weaker = " or ".join(f"GSPO_SANDBOX={m}" for m in MODES[MODES.index(mode) + 1:])
        raise SandboxUnavailable(f"code rewards refused: no {mode} sandbox here: {why}; or "
                                 f"accept a weaker sandbox by name: {weaker}")
    return mode


def _drops_privileges() -> bool:
    return os.geteuid() == 0 and shutil.which("setpriv") is not None


def _command(mode: str, python: str, spec: dict, limits: Limits) -> list[str]:
    run = [python, "-I", "-S", "-c", _RUNNER, json.dumps(spec)]
    if mode == "bwrap":
        return [*_bwrap_prefix(python, limits), "--", *run]
    drop = _to_nobody() if _drops_privileges() else []
    if mode == "rlimits":
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


def _runner(cmd: list[str], cwd: str, fds: list[int], report: str, log: str,
            timeout: float) -> bool:
    """Run the sandboxed runner to its end, its records in ``report``; whether it started."""
    with open(report, "wb") as frep, open(log, "wb") as flog:
        # No preexec_fn, so Popen can vfork, which stays fast when this process is large (a
        # loaded engine): the runner sets its own rlimits before anything untrusted runs.
        proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=frep,
                                stderr=flog, env={**_ENV, "HOME": cwd},
                                start_new_session=True, pass_fds=fds)
        try:
            _wait(proc, timeout)
        finally:
            try:  # the runner's group; in a PID namespace, everything in it dies with it
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait()
    with open(report, "rb") as f:
        return f.readline().startswith(b'{"ready"')


def _run_chunk(mode: str, source_path: str, base: str, first: int, tests, limits: Limits,
               stop_on_error: bool) -> list[TestResult]:
    """One sandboxed runner over ``tests`` (numbered from ``first``): a verdict for each it ran.

    The source and stdio files sit in a directory only the caller can open; the runner and
    the program only ever hold their fds, passed down, so no program reaches another test's
    files. Raises ``SandboxUnavailable`` where the sandbox itself did not start, twice.
    """
    cwd = "/"  # bwrap makes its own run directory
    if mode != "bwrap":
        cwd = os.path.join(base, f"chunk{first}")
        os.mkdir(cwd, 0o700)
        if _drops_privileges():
            os.chown(cwd, NOBODY, NOBODY)
    paths = [{n: os.path.join(base, "io", f"{first + i}.{n}") for n in ("in", "out", "err")}
             for i in range(len(tests))]
    report = os.path.join(base, "io", f"chunk{first}.jsonl")
    log = os.path.join(base, "io", f"chunk{first}.log")
    files = []
    try:
        for p, test in zip(paths, tests, strict=True):
            with open(p["in"], "w", encoding="utf-8") as f:
                f.write(test.get("input", ""))
            files += [open(p["in"], "rb"), open(p["out"], "wb"), open(p["err"], "wb")]
        fds = [[f.fileno() for f in files[k:k + 3]] for k in range(0, len(files), 3)]
        files.append(open(source_path, "rb"))
        spec = {"fds": fds, "source_fd": files[-1].fileno(), "namespace": mode != "rlimits",
                "wipe": [".", "/dev/shm"] if mode == "bwrap" else ["."],  # the host's is not ours
                "stop_on_error": stop_on_error, "runner_cpu_s": limits.cpu_s * len(tests) + 5,
                "limits": {"wall_s": limits.wall_s, "cpu_s": limits.cpu_s,
                           "mem": limits.mem_mb << 20, "output_bytes": limits.output_bytes,
                           "nproc": limits.nproc, "nofile": limits.nofile}}
        cmd = _command(mode, sandbox_python(), spec, limits)
        timeout = len(tests) * (limits.wall_s + 1) + 10
        # No program runs before the runner is ready, so a retry finds every file untouched
        # but the source, which the runner may have read: a start can fail for a passing
        # shortage (processes, namespaces), twice in a row it is the sandbox.
        for attempt in range(2):
            files[-1].seek(0)
            try:
                if _runner(cmd, cwd, [f.fileno() for f in files], report, log, timeout):
                    break
            except OSError as e:
                why = str(e)
            else:
                why = (_read(log, 4096).strip().splitlines() or ["no message"])[-1][:200]
            if attempt:
                raise SandboxUnavailable(f"the {mode} sandbox did not start: {why}")
    finally:
        for f in files:
            f.close()
    started, done = {}, {}
    for line in _read(report, 1 << 20).splitlines():
        try:
            rec = json.loads(line)
            if "start" in rec:
                started[int(rec["start"])] = int(rec["pid"])
            elif "test" in rec:
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
    for p in paths:  # a chunk's outputs leave the disk before the next chunk writes its own
        for path in p.values():
            try:
                os.unlink(path)
            except OSError:
                pass
    return results


def run_tests(source: str, tests: list[dict] | tuple[dict, ...], limits: Limits | None = None,
              stop_on_failure: bool = False) -> list[TestResult]:
    """Run ``source`` on each test (``{"input", "output"}``) and return a verdict each.

    One sandboxed interpreter serves up to ``CHUNK`` tests, forking a fresh process per
    test. With ``stop_on_failure`` the tests after the first non-pass are not run and get
    the verdict of the failing one (a reward needs all tests to pass, so this saves time).
    ``output`` may be None to only run the program. Never raises for the program's behaviour;
    raises ``SandboxUnavailable`` where the sandbox ``GSPO_SANDBOX`` asks for cannot run.
    """
    mode = isolation()
    limits = limits or Limits()
    tests = list(tests)
    results: list[TestResult] = []
    try:
        base = tempfile.mkdtemp(prefix="gspo-sbx-")
        os.chmod(base, 0o711)  # the sandbox user may enter its run dir, not list the rest
        os.mkdir(os.path.join(base, "io"), 0o700)
        source_path = os.path.join(base, "io", "prog.py")
        with open(source_path, "w", encoding="utf-8") as f:
            f.write(source)
    except OSError as e:
        return [TestResult(Verdict.CRASH, f"no work dir: {e}") for _ in tests]
    try:
        for first in range(0, len(tests), CHUNK):
            chunk = tests[first:first + CHUNK]
            got = _run_chunk(mode, source_path, base, first, chunk, limits, stop_on_failure)
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
