"""A Deno sandbox for user TypeScript: one short-lived process per run.

Guarantees, for any code:

- no file, environment, network or subprocess access: Deno runs with NO permission flags
  and ``--no-prompt``; remote and npm imports are off (``--no-remote --no-npm``). Module
  loading is not permission-checked in Deno, so ``import`` (static or dynamic) and
  ``export ... from`` are rejected before running, code generation from strings (``eval``,
  ``new Function``) is disabled so they cannot be assembled at run time, and ``Worker``
  is removed;
- a wall-clock timeout: the whole process group is killed;
- a memory cap: V8's heap (``--max-old-space-size``) plus ``RLIMIT_DATA`` for memory
  outside the heap (ArrayBuffers);
- a capped output: stdout beyond ``max_output_bytes`` kills the run;
- the built-in prototypes are frozen before the user's module is evaluated, and
  ``Deno.exit`` / ``close`` throw instead of ending the process;
- the input arrives as JSON on stdin and the user's default export's return value comes
  back as JSON behind a per-run random marker, so ``console.log`` output (sent to stderr)
  cannot be mistaken for the result;
- errors carry the user's own line numbers (``user.ts:LINE:COL``), never host paths.

The code is written once to a content-addressed directory, so a second run of the same
code skips writing and Deno's transpile cache (``DENO_DIR``) is warm.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import resource
import secrets
import shutil
import signal
import sys
import tempfile
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

HARNESS_VERSION = "1"
STDERR_TAIL = 16_384


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


_PRELUDE = r"""
// wfmon sandbox prelude: evaluated before the user's module.
// Synchronous on purpose: a module with top-level await would let the user's module be
// evaluated before this one finishes, i.e. before the hardening below.
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
const cut = raw.indexOf("\n");
const marker = raw.slice(0, cut);
export const input = JSON.parse(raw.slice(cut + 1));
const stdout = Deno.stdout;
const encoder = new TextEncoder();
const stringify = JSON.stringify;
const writeAll = (text) => {
  const bytes = encoder.encode(text);
  let offset = 0;
  while (offset < bytes.length) offset += stdout.writeSync(bytes.subarray(offset));
};
export function emitValue(value) {
  let text;
  try {
    text = stringify(value === undefined ? null : value);
  } catch (e) {
    const why = String(e && e.message);
    return emitError("TypeError", "the returned value is not JSON-serializable: " + why, "");
  }
  if (text === undefined) text = "null";
  writeAll("\n" + marker + "V" + text);
}
export function emitError(name, message, stack) {
  const error = { name: String(name), message: String(message), stack: String(stack || "") };
  writeAll("\n" + marker + "E" + stringify(error));
}
// Console output is diagnostics: keep stdout for the result.
const err = console.error.bind(console);
for (const k of ["log", "info", "debug", "trace", "table", "dir"]) console[k] = err;
// Ending the process early is not a way out of the protocol.
const refuse = (what) => () => { throw new Error(what + " is not allowed in the sandbox"); };
Deno.exit = refuse("Deno.exit");
globalThis.close = refuse("close()");
delete globalThis.Worker;
// Freeze what the harness itself relies on, so tampering fails loudly. (Not Error.prototype:
// Deno's own op errors assign to inherited properties and would break.)
for (const o of [Object.prototype, Array.prototype, Function.prototype, Promise.prototype, JSON]) {
  Object.freeze(o);
}
"""

_MAIN = r"""
import { input, emitValue, emitError } from "./prelude.js";
import * as user from "./user.ts";
const fn = user.default;
if (typeof fn !== "function") {
  emitError("TypeError", "the code must `export default function (input) { ... }`", "");
} else {
  try {
    emitValue(await fn(input));
  } catch (e) {
    const isObj = e !== null && typeof e === "object";
    const name = isObj && e.name ? e.name : "Error";
    emitError(name, isObj && "message" in e ? e.message : String(e), isObj ? e.stack : "");
  }
}
"""

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


class DenoSandbox:
    """Runs TypeScript under :class:`SandboxLimits`. ``home`` holds ``DENO_DIR`` and the
    content-addressed script directories (wfmon-owned, never shared with the user code)."""

    def __init__(self, home: Path | None = None, deno: str | None = None) -> None:
        if home is None:
            from wfmon.settings import load_settings

            home = load_settings().state_path / "deno"
        self.home = home.resolve()
        self.deno = deno or find_deno()
        (self.home / "cache").mkdir(parents=True, exist_ok=True)
        (self.home / "scripts").mkdir(parents=True, exist_ok=True)

    def _script_dir(self, code: str) -> Path:
        digest = hashlib.sha256(f"{HARNESS_VERSION}\0{code}".encode()).hexdigest()
        target = self.home / "scripts" / digest[:32]
        if (target / "main.js").exists():
            return target
        staging = Path(tempfile.mkdtemp(dir=self.home / "scripts", prefix=".tmp-"))
        (staging / "user.ts").write_text(code)
        (staging / "prelude.js").write_text(_PRELUDE)
        (staging / "main.js").write_text(_MAIN)
        try:
            staging.rename(target)
        except OSError:  # another run wrote it first
            shutil.rmtree(staging, ignore_errors=True)
        return target

    async def run(self, code: str, value: Any, limits: SandboxLimits = SandboxLimits()) -> Any:
        """Run ``code``'s default export on ``value``; return what it returns.

        Raises :class:`SandboxError` for anything the code did wrong.
        """
        check_source(code)
        try:
            payload = json.dumps(value, separators=(",", ":"), allow_nan=False)
        except ValueError as exc:
            raise SandboxError(SandboxErrorType.ERROR, f"input is not JSON: {exc}") from None
        script = self._script_dir(code)
        marker = secrets.token_hex(16)
        memory_mb = limits.memory_mb
        # V8 reserves ~0.4 GB of writable address space up front; the rest is the cap for
        # memory outside the heap (ArrayBuffers, strings' external storage).
        data_limit = (memory_mb * 2 + 512) * 1024 * 1024

        def preexec() -> None:
            resource.setrlimit(resource.RLIMIT_DATA, (data_limit, data_limit))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

        proc = await asyncio.create_subprocess_exec(
            self.deno,
            "run",
            "--no-prompt",
            "--no-remote",
            "--no-npm",
            "--no-config",
            "--no-lock",
            "--quiet",
            f"--v8-flags=--max-old-space-size={memory_mb},--disallow-code-generation-from-strings",
            "main.js",
            cwd=script,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={
                "DENO_DIR": str(self.home / "cache"),
                "DENO_NO_UPDATE_CHECK": "1",
                "NO_COLOR": "1",
                "HOME": str(script),
                "PATH": "/nonexistent",
            },
            start_new_session=True,  # its own process group: one kill ends everything
            preexec_fn=preexec,
        )
        try:
            stdout, stderr, timed_out, too_big = await self._communicate(
                proc, f"{marker}\n{payload}".encode(), limits
            )
        finally:
            _kill_group(proc)
            with contextlib.suppress(ProcessLookupError):
                await proc.wait()
        paths = (str(script), script.as_uri())
        err_text = _scrub(stderr.decode(errors="replace"), paths)
        # The output cap first: once it is hit the run is killed, and that is the cause
        # even if the clock ran out while the killed process was being reaped.
        if too_big:
            raise SandboxError(
                SandboxErrorType.OUTPUT,
                f"the code wrote more than {limits.max_output_bytes} bytes of output",
            )
        if timed_out:
            raise SandboxError(
                SandboxErrorType.TIMEOUT, f"the code ran longer than {limits.timeout_s:g} s"
            )
        out_text = stdout.decode(errors="replace")
        cut = out_text.rfind("\n" + marker)
        if cut < 0:
            raise self._no_result(proc.returncode, err_text, memory_mb)
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
            message = f"{error['name']}: {error['message']}"
        except (ValueError, KeyError, TypeError):
            raise SandboxError(
                SandboxErrorType.ERROR, "the code failed and its error could not be read"
            ) from None
        where = _user_frames(_scrub(error.get("stack", ""), paths))
        if any(m in error["message"] for m in _MEMORY_ERRORS):
            raise SandboxError(SandboxErrorType.MEMORY, f"{message} (memory limit {memory_mb} MB)")
        raise SandboxError(SandboxErrorType.ERROR, f"{message}{where}")

    async def _communicate(
        self, proc: asyncio.subprocess.Process, data: bytes, limits: SandboxLimits
    ) -> tuple[bytes, bytes, bool, bool]:
        assert proc.stdin and proc.stdout and proc.stderr
        cap = limits.max_output_bytes + 4096  # room for the marker and envelope
        out = bytearray()
        err = bytearray()
        too_big = False

        async def feed() -> None:
            assert proc.stdin
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                proc.stdin.write(data)
                await proc.stdin.drain()
                proc.stdin.close()

        async def read_out() -> None:
            nonlocal too_big
            assert proc.stdout
            while chunk := await proc.stdout.read(65536):
                out.extend(chunk)
                if len(out) > cap:
                    too_big = True
                    _kill_group(proc)
                    return

        async def read_err() -> None:
            assert proc.stderr
            while chunk := await proc.stderr.read(65536):
                err.extend(chunk)
                if len(err) > STDERR_TAIL * 2:
                    del err[: len(err) - STDERR_TAIL]

        try:
            await asyncio.wait_for(
                asyncio.gather(feed(), read_out(), read_err(), proc.wait()), limits.timeout_s
            )
        except TimeoutError:
            return bytes(out), bytes(err), True, too_big
        return bytes(out), bytes(err), False, too_big

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
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


def _scrub(text: str, paths: tuple[str, ...]) -> str:
    """Host paths out: ``file:///...scripts/<hash>/user.ts:3:7`` -> ``user.ts:3:7``."""
    for p in sorted(paths, key=len, reverse=True):
        text = text.replace(p + "/", "").replace(p, ".")
    return text


def _user_frames(stack: str) -> str:
    frames = [line.strip() for line in stack.splitlines() if "user.ts:" in line and "at " in line]
    return ("\n" + "\n".join(frames[:10])) if frames else ""


def _first_lines(text: str, n: int = 12) -> str:
    return "\n".join(text.splitlines()[:n])[:4000]
