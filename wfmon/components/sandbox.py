"""A Deno sandbox for user TypeScript: one short-lived process per run.

Guarantees, for any code:

- no file, environment, network or subprocess access: Deno runs with NO permission flags
  and ``--no-prompt``; remote and npm imports are off (``--no-remote --no-npm``). Module
  loading is not permission-checked in Deno, so ``import`` (static or dynamic) and
  ``export ... from`` are rejected before running, code generation from strings (``eval``,
  ``new Function``) is disabled so they cannot be assembled at run time, and ``Worker``
  and the runtime's internals (``Deno[Deno.internal]``, whose ``core.evalContext`` would
  evaluate strings) are removed;
- every run ends within its time limit plus a small bound (:data:`KILL_GRACE_S`), whatever
  it writes: its output goes to pipes of our own that are read without blocking and with
  caps, never waited on for end-of-file, and the clock's end kills the whole process group
  (the run's own session);
- a memory cap: V8's heap (``--max-old-space-size``) plus ``RLIMIT_DATA`` for memory
  outside the heap (ArrayBuffers);
- capped output: stdout beyond ``max_output_bytes`` and console output (stderr) beyond
  :data:`CONSOLE_CAP` kill the run;
- no state between runs, no disk use: Deno keeps ``localStorage`` and the Cache API under
  ``DENO_DIR/location_data`` without asking for any permission. That path is an empty
  regular file, so Deno cannot create storage there (whatever the user's code reaches, and
  even as root), and ``localStorage`` / ``caches`` throw a clear error;
- nothing of the host's layout: the harness and the user's module are loaded from
  ``data:`` URLs (so ``Deno.mainModule`` and stack traces name no file), the working
  directory is ``/`` and ``Deno.execPath`` throws;
- the built-in prototypes are frozen before the user's module is evaluated, and
  ``Deno.exit`` / ``close`` throw instead of ending the process;
- the input arrives as JSON on stdin and the user's default export's return value comes
  back as JSON behind a per-run random marker, so ``console.log`` output (sent to stderr)
  cannot be mistaken for the result;
- errors carry the user's own line numbers (``user.ts:LINE:COL``), never host paths.

``DENO_DIR`` is shared by the runs: Deno caches the transpiled module there, keyed by its
``data:`` URL (so by the code), which keeps a second run of the same code warm.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import json
import os
import re
import resource
import secrets
import shutil
import signal
import stat
import sys
import tempfile
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

STDERR_TAIL = 16_384
# Console output (stderr) is diagnostics, and only its tail is kept: past this much the run
# is killed rather than keeping the worker busy reading it until the clock runs out.
CONSOLE_CAP = 8_000_000
# After a kill, how long to wait for the process to be gone before returning anyway (the
# child watcher still reaps it).
KILL_GRACE_S = 1.0
_CHUNK = 1 << 20
_USER_URL_PREFIX = "data:application/typescript;charset=utf-8;base64,"


class SandboxErrorType(StrEnum):
    ERROR = "TypeScriptError"
    COMPILE = "TypeScriptCompileError"
    TIMEOUT = "TypeScriptTimeout"
    MEMORY = "TypeScriptMemoryLimit"
    OUTPUT = "TypeScriptOutputTooLarge"
    FORBIDDEN = "TypeScriptForbidden"


class SandboxError(Exception):
    """The user's code failed; ``type`` says how. Never retryable: the same code and
    input fail the same way."""

    def __init__(self, type_: SandboxErrorType, message: str) -> None:
        super().__init__(message)
        self.type = type_
        self.message = message


@dataclass(frozen=True)
class SandboxLimits:
    timeout_s: float = 5.0
    memory_mb: int = 128
    max_output_bytes: int = 1_000_000


# The main module, loaded from a data: URL. Reads "<marker>\n<user module URL>\n<input>"
# from stdin, hardens the runtime, and only then imports the user's module, so nothing of
# the user's code runs before the hardening.
_BOOTSTRAP = r"""
// wfmon sandbox bootstrap.
const decoder = new TextDecoder();
const chunks = [];
for (;;) {
  const buf = new Uint8Array(65536);
  const n = Deno.stdin.readSync(buf);
  if (n === null) break;
  chunks.push(buf.subarray(0, n));
}
let total = 0;
for (const c of chunks) total += c.length;
const all = new Uint8Array(total);
let at = 0;
for (const c of chunks) { all.set(c, at); at += c.length; }
const raw = decoder.decode(all);
const cut1 = raw.indexOf("\n");
const cut2 = raw.indexOf("\n", cut1 + 1);
const marker = raw.slice(0, cut1);
const userUrl = raw.slice(cut1 + 1, cut2);
const input = JSON.parse(raw.slice(cut2 + 1));
const stdout = Deno.stdout;
const encoder = new TextEncoder();
const stringify = JSON.stringify;
const replace = String.prototype.replace;
// The modules' URLs carry their whole source (stack traces shorten them to "abc......xyz"):
// name them instead.
const userUrls = /data:application\/typescript[^,\s]*,[A-Za-z0-9+\/=.]*/g;
const selfUrls = /data:application\/javascript[^,\s]*,[A-Za-z0-9+\/=.]*/g;
const named = (text) =>
  replace.call(replace.call(String(text || ""), userUrls, "user.ts"), selfUrls, "sandbox.js");
const writeAll = (text) => {
  const bytes = encoder.encode(text);
  let offset = 0;
  while (offset < bytes.length) offset += stdout.writeSync(bytes.subarray(offset));
};
function emitValue(value) {
  let text;
  try {
    text = stringify(value === undefined ? null : value);
  } catch (e) {
    const why = String(e && e.message);
    return emitError("E", "TypeError", "the returned value is not JSON-serializable: " + why, "");
  }
  if (text === undefined) text = "null";
  writeAll("\n" + marker + "V" + text);
}
function emitError(kind, name, message, stack) {
  const error = { name: String(name), message: named(message), stack: named(stack) };
  writeAll("\n" + marker + kind + stringify(error));
}
function emitThrown(kind, e) {
  const isObj = e !== null && typeof e === "object";
  const name = isObj && e.name ? e.name : "Error";
  emitError(kind, name, isObj && "message" in e ? e.message : String(e), isObj ? e.stack : "");
}
// Console output is diagnostics: keep stdout for the result.
const err = console.error.bind(console);
for (const k of ["log", "info", "debug", "trace", "table", "dir"]) console[k] = err;
// Ending the process early is not a way out of the protocol.
const refuse = (what) => () => { throw new Error(what + " is not allowed in the sandbox"); };
Deno.exit = refuse("Deno.exit");
globalThis.close = refuse("close()");
delete globalThis.Worker;
// The runtime's internals (core.evalContext evaluates strings, whatever V8's flags say).
delete Deno[Deno.internal];
// Nothing of the host's layout.
Deno.execPath = () => { throw new Error("Deno.execPath is not available in the sandbox"); };
// No state between runs: Deno keeps these on disk, shared by every run.
const noStorage = (what) => ({
  get() { throw new Error(what + " is not available in the sandbox: runs keep no state"); },
  configurable: false,
  enumerable: false,
});
Object.defineProperty(globalThis, "localStorage", noStorage("localStorage"));
Object.defineProperty(globalThis, "caches", noStorage("the Cache API (caches)"));
for (const k of ["Storage", "CacheStorage", "Cache"]) delete globalThis[k];
// Freeze what the harness itself relies on, so tampering fails loudly. (Not Error.prototype:
// Deno's own op errors assign to inherited properties and would break.)
for (const o of [Object.prototype, Array.prototype, Function.prototype, Promise.prototype, JSON]) {
  Object.freeze(o);
}
let user = null;
try {
  user = await import(userUrl);
} catch (e) {
  // A module that cannot be loaded (parsed) is a compile error; one whose top level threw
  // is the code's own error.
  const notLoaded = e !== null && typeof e === "object" && e.code === "ERR_MODULE_NOT_FOUND";
  emitThrown(notLoaded ? "C" : "E", e);
}
if (user !== null) {
  const fn = user.default;
  if (typeof fn !== "function") {
    emitError("E", "TypeError", "the code must `export default function (input) { ... }`", "");
  } else {
    try {
      emitValue(await fn(input));
    } catch (e) {
      emitThrown("E", e);
    }
  }
}
"""
_BOOTSTRAP_URL = "data:application/javascript;base64," + base64.b64encode(
    _BOOTSTRAP.encode()
).decode("ascii")

# The modules' data: URLs, whole or as stack traces shorten them ("data:...;base64,ab......yz").
_MODULE_URL = re.compile(r"data:application/(typescript|javascript)[^,\s]*,[A-Za-z0-9+/=.]*")

# `import` in any form, and `export ... from` (a re-export is an import).
_FORBIDDEN = re.compile(r"\bimport\b|\bexport\b[^;]*?\bfrom\s*[\"'`]|\brequire\s*\(")
_OOM_MARKERS = (
    "Fatal JavaScript out of memory",
    "Fatal process out of memory",
    "JavaScript heap out of memory",
    "Reached heap limit",
)
_MEMORY_ERRORS = ("Array buffer allocation failed", "Invalid string length", "Invalid array length")


def find_deno() -> str:
    """The ``deno`` shipped by the ``deno`` wheel (next to the Python), else on PATH."""
    beside = Path(sys.executable).with_name("deno")
    if beside.exists():
        return str(beside)
    found = shutil.which("deno")
    if not found:
        raise RuntimeError("deno not found: install the 'deno' package into wfmon's environment")
    return found


def check_source(code: str) -> None:
    """Reject what the sandbox cannot allow, naming the line."""
    if not isinstance(code, str) or not code.strip():
        raise SandboxError(SandboxErrorType.COMPILE, "the code is empty")
    match = _FORBIDDEN.search(code)
    if match:
        line = code.count("\n", 0, match.start()) + 1
        raise SandboxError(
            SandboxErrorType.FORBIDDEN,
            f"user.ts:{line}: imports are not available in the sandbox ({match.group(0)!r}); "
            "the code must be self-contained",
        )


@dataclass
class _Pipe:
    """The read end of one of the run's output pipes; at most ``cap`` bytes are taken."""

    fd: int
    cap: int
    tail_only: bool = False  # keep the last STDERR_TAIL bytes only
    data: bytearray = field(default_factory=bytearray)
    total: int = 0
    closed: bool = False  # end of file, or over the cap: no more reading

    @property
    def over(self) -> bool:
        return self.total > self.cap

    def read_once(self) -> bool:
        """One non-blocking read; False when nothing more is to be had now."""
        if self.closed:
            return False
        try:
            chunk = os.read(self.fd, _CHUNK)
        except BlockingIOError:
            return False
        except OSError:
            chunk = b""
        if not chunk:
            self.closed = True
            return False
        self.total += len(chunk)
        self.data += chunk
        if self.tail_only and len(self.data) > 2 * STDERR_TAIL:
            del self.data[: len(self.data) - STDERR_TAIL]
        if self.over:
            self.closed = True
            return False
        return True


@dataclass
class _Outcome:
    stdout: bytes
    stderr: bytes
    returncode: int | None
    timed_out: bool
    stdout_over: bool
    stderr_over: bool


class DenoSandbox:
    """Runs TypeScript under :class:`SandboxLimits`. ``home`` holds ``DENO_DIR``
    (wfmon-owned, never readable by the user code)."""

    def __init__(self, home: Path | None = None, deno: str | None = None) -> None:
        if home is None:
            from wfmon.settings import load_settings

            home = load_settings().state_path / "deno"
        self.home = home.resolve()
        self.deno = deno or find_deno()
        self.deno_dir = self.home / "cache"
        self.deno_dir.mkdir(parents=True, exist_ok=True)
        # Earlier versions wrote each code to a directory of its own here.
        shutil.rmtree(self.home / "scripts", ignore_errors=True)
        self._block_location_data()
        self._reaping: set[asyncio.Task[int]] = set()

    def _block_location_data(self) -> None:
        """``DENO_DIR/location_data`` is where Deno keeps localStorage and the Cache API:
        an empty regular file there leaves it nowhere to create them. Checked before each
        run (one ``lstat``); whatever else is there (an older version's data) is removed."""
        location = self.deno_dir / "location_data"
        try:
            st = location.lstat()
        except FileNotFoundError:
            pass
        else:
            if stat.S_ISREG(st.st_mode) and st.st_size == 0:
                return
            if stat.S_ISDIR(st.st_mode):
                shutil.rmtree(location, ignore_errors=True)
            else:
                location.unlink(missing_ok=True)
        with contextlib.suppress(FileExistsError):  # a concurrent run made it
            os.close(os.open(location, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444))

    async def run(self, code: str, value: Any, limits: SandboxLimits = SandboxLimits()) -> Any:
        """Run ``code``'s default export on ``value``; return what it returns.

        Raises :class:`SandboxError` for anything the code did wrong.
        """
        check_source(code)
        try:
            payload = json.dumps(value, separators=(",", ":"), allow_nan=False)
        except ValueError as exc:
            raise SandboxError(SandboxErrorType.ERROR, f"input is not JSON: {exc}") from None
        self._block_location_data()
        user_url = _USER_URL_PREFIX + base64.b64encode(code.encode()).decode("ascii")
        marker = secrets.token_hex(16)
        memory_mb = limits.memory_mb
        outcome = await self._execute(
            f"{marker}\n{user_url}\n{payload}".encode(),
            limits,
            f"--v8-flags=--max-old-space-size={memory_mb},--disallow-code-generation-from-strings",
        )
        names = (
            (self.home.as_uri(), "<sandbox>"),
            (str(self.home), "<sandbox>"),
            (self.deno, "deno"),
        )
        err_text = _scrub(outcome.stderr.decode(errors="replace"), names)
        # The output caps first: once one is hit the run is killed, and that is the cause
        # even if the clock ran out while the killed process was being reaped.
        if outcome.stdout_over:
            raise SandboxError(
                SandboxErrorType.OUTPUT,
                f"the code wrote more than {limits.max_output_bytes} bytes of output",
            )
        if outcome.stderr_over:
            raise SandboxError(
                SandboxErrorType.OUTPUT,
                f"the code wrote more than {CONSOLE_CAP} bytes of console output",
            )
        if outcome.timed_out:
            raise SandboxError(
                SandboxErrorType.TIMEOUT, f"the code ran longer than {limits.timeout_s:g} s"
            )
        out_text = outcome.stdout.decode(errors="replace")
        cut = out_text.rfind("\n" + marker)
        if cut < 0:
            raise self._no_result(outcome.returncode, err_text, memory_mb)
        kind, body = out_text[cut + 1 + len(marker)], out_text[cut + 2 + len(marker) :]
        if kind == "V":
            if len(body.encode()) > limits.max_output_bytes:
                raise SandboxError(
                    SandboxErrorType.OUTPUT,
                    f"the returned value is larger than {limits.max_output_bytes} bytes",
                )
            return json.loads(body)
        try:
            error = json.loads(body)
            message = _scrub(f"{error['name']}: {error['message']}", names)
        except (ValueError, KeyError, TypeError):
            raise SandboxError(
                SandboxErrorType.ERROR, "the code failed and its error could not be read"
            ) from None
        if kind == "C":
            text = _scrub(str(error["message"]), names)
            raise SandboxError(SandboxErrorType.COMPILE, _first_lines(text))
        where = _user_frames(_scrub(error.get("stack", ""), names))
        if any(m in error["message"] for m in _MEMORY_ERRORS):
            raise SandboxError(SandboxErrorType.MEMORY, f"{message} (memory limit {memory_mb} MB)")
        raise SandboxError(SandboxErrorType.ERROR, f"{message}{where}")

    async def _execute(self, data: bytes, limits: SandboxLimits, v8_flags: str) -> _Outcome:
        """Run the bootstrap with ``data`` on stdin; return within ``limits.timeout_s`` plus
        at most :data:`KILL_GRACE_S`, whatever the process does with its output.

        Python 3.11's ``Process.wait()`` also waits for the end of asyncio-managed pipes,
        which never comes once a reader has stopped (paused pipe, full buffer): so the
        output pipes here are our own, read by callbacks that take what is there and never
        wait for end-of-file, and asyncio only watches the process's exit."""
        loop = asyncio.get_running_loop()
        data_limit = (limits.memory_mb * 2 + 512) * 1024 * 1024
        # V8 reserves ~0.4 GB of writable address space up front; the rest is the cap for
        # memory outside the heap (ArrayBuffers, strings' external storage).

        def preexec() -> None:
            resource.setrlimit(resource.RLIMIT_DATA, (data_limit, data_limit))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

        fds: list[int] = []
        proc: asyncio.subprocess.Process | None = None
        waiting: asyncio.Task[int] | None = None
        try:
            out_r, out_w = os.pipe()
            fds += (out_r, out_w)
            err_r, err_w = os.pipe()
            fds += (err_r, err_w)
            for fd in (out_r, err_r):
                os.set_blocking(fd, False)
                with contextlib.suppress(OSError, AttributeError):  # fewer wake-ups
                    fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _CHUNK)
            out = _Pipe(out_r, limits.max_output_bytes + 4096)  # room for the envelope
            err = _Pipe(err_r, CONSOLE_CAP, tail_only=True)
            with tempfile.TemporaryFile() as stdin:
                stdin.write(data)
                stdin.seek(0)
                proc = await asyncio.create_subprocess_exec(
                    self.deno,
                    "run",
                    "--no-prompt",
                    "--no-remote",
                    "--no-npm",
                    "--no-config",
                    "--no-lock",
                    "--quiet",
                    v8_flags,
                    _BOOTSTRAP_URL,
                    cwd="/",
                    stdin=stdin,
                    stdout=out_w,
                    stderr=err_w,
                    env={
                        "DENO_DIR": str(self.deno_dir),
                        "DENO_NO_UPDATE_CHECK": "1",
                        "NO_COLOR": "1",
                        "HOME": str(self.home),
                        "PATH": "/nonexistent",
                    },
                    start_new_session=True,  # its own session: one kill ends everything
                    preexec_fn=preexec,
                )
            # Only the child holds the write ends now.
            for fd in (out_w, err_w):
                os.close(fd)
                fds.remove(fd)
            running = proc

            def reader(pipe: _Pipe) -> None:
                pipe.read_once()
                if pipe.closed:
                    loop.remove_reader(pipe.fd)
                    if pipe.over:
                        _kill_group(running)

            for pipe in (out, err):
                loop.add_reader(pipe.fd, reader, pipe)
            waiting = asyncio.ensure_future(proc.wait())
            done, _ = await asyncio.wait({waiting}, timeout=limits.timeout_s)
            timed_out = not done
            _kill_group(proc)
            if timed_out:
                await asyncio.wait({waiting}, timeout=KILL_GRACE_S)
            else:
                # Exited: all it wrote is in the pipes. Take what is there, no more.
                for pipe in (out, err):
                    while pipe.read_once():
                        pass
            return _Outcome(
                bytes(out.data), bytes(err.data), proc.returncode, timed_out, out.over, err.over
            )
        finally:
            if proc is not None and proc.returncode is None:  # cancelled, or an error here
                _kill_group(proc)
            for fd in fds:
                loop.remove_reader(fd)
                os.close(fd)
            if waiting is not None and not waiting.done():
                # Still being reaped (or we were cancelled): let the child watcher finish.
                self._reaping.add(waiting)
                waiting.add_done_callback(self._reaping.discard)

    @staticmethod
    def _no_result(returncode: int | None, stderr: str, memory_mb: int) -> SandboxError:
        if any(m in stderr for m in _OOM_MARKERS) or returncode in (133, -6, -9):
            return SandboxError(
                SandboxErrorType.MEMORY, f"the code exceeded the memory limit of {memory_mb} MB"
            )
        text = stderr.strip()
        if "could not be parsed" in text or "SyntaxError" in text or "TS" in text[:20]:
            return SandboxError(
                SandboxErrorType.COMPILE, _first_lines(text.removeprefix("error: "))
            )
        detail = f": {_first_lines(text)}" if text else ""
        return SandboxError(
            SandboxErrorType.ERROR,
            f"the code ended without returning (exit code {returncode}){detail}",
        )


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    """SIGKILL the run's process group (its session), leader exited or not."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _scrub(text: str, names: tuple[tuple[str, str], ...]) -> str:
    """Module URLs and host paths out: ``data:...;base64,...:3:7`` -> ``user.ts:3:7``."""
    text = _MODULE_URL.sub(
        lambda m: "user.ts" if m.group(1) == "typescript" else "sandbox.js", text
    )
    for long, short in sorted(names, key=lambda n: len(n[0]), reverse=True):
        text = text.replace(long, short)
    return text


def _user_frames(stack: str) -> str:
    frames = [line.strip() for line in stack.splitlines() if "user.ts:" in line and "at " in line]
    return ("\n" + "\n".join(frames[:10])) if frames else ""


def _first_lines(text: str, n: int = 12) -> str:
    return "\n".join(text.splitlines()[:n])[:4000]
