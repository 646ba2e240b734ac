"""The Deno sandbox against real Deno: runs end on time whatever they write, keep no state
between runs, and see nothing of the host's directory layout."""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from wfmon.components import DenoSandbox, SandboxError, SandboxLimits
from wfmon.components.sandbox import find_deno

FAST = SandboxLimits(timeout_s=10.0, memory_mb=64, max_output_bytes=100_000)
# What a run may take beyond its own time limit: Deno's start on a loaded machine, the kill
# and the reaping. A run that hangs on an open pipe exceeds it by far.
BOUND_S = 1.5

FLOODS = {
    "console.log": "export default () => {\n"
    "  const s = 'x'.repeat(65536);\n  for (;;) console.log(s);\n}",
    "console.error": "export default () => {\n"
    "  const s = 'y'.repeat(65536);\n  for (;;) console.error(s);\n}",
    "mixed": "export default () => {\n"
    "  const s = 'z'.repeat(65536);\n  const b = new TextEncoder().encode('w'.repeat(64));\n"
    "  for (;;) { console.log(s); Deno.stdout.writeSync(b); Deno.stderr.writeSync(b); }\n}",
    "stdout": "export default () => {\n"
    "  const b = new Uint8Array(65536);\n  for (;;) Deno.stdout.writeSync(b);\n}",
    "top-level": "const s = 'x'.repeat(65536);\nfor (;;) console.log(s);\nexport default () => 1",
    # Slower than the console cap: these end by the clock, still writing.
    "paced console.log": "export default () => {\n  const s = 'x'.repeat(65536);\n"
    "  for (;;) { console.log(s); const t = Date.now(); while (Date.now() - t < 5); }\n}",
    "paced mixed": "export default () => {\n  const s = 'x'.repeat(32768);\n"
    "  const b = new TextEncoder().encode('w'.repeat(64));\n"
    "  for (;;) {\n    console.log(s); console.error(s); Deno.stdout.writeSync(b);\n"
    "    const t = Date.now(); while (Date.now() - t < 5);\n  }\n}",
    "fill then spin": "export default () => {\n  const s = 'x'.repeat(65536);\n"
    "  for (let i = 0; i < 64; i++) console.log(s);\n  for (;;);\n}",
}


def run(sandbox: DenoSandbox, code: str, value: Any = None, limits: SandboxLimits = FAST) -> Any:
    return asyncio.run(sandbox.run(code, value, limits))


def fails(
    sandbox: DenoSandbox, code: str, value: Any = None, limits: SandboxLimits = FAST
) -> SandboxError:
    with pytest.raises(SandboxError) as info:
        run(sandbox, code, value, limits)
    return info.value


# -- every run ends within its time limit ---------------------------------------------------


async def _timed(sandbox: DenoSandbox, code: str, limits: SandboxLimits) -> tuple[str, float]:
    started = time.monotonic()
    try:
        # The outer wait only turns a hang into a failure instead of a stuck test.
        await asyncio.wait_for(sandbox.run(code, None, limits), min(limits.timeout_s, 5) + 10)
        outcome = "returned"
    except SandboxError as exc:
        outcome = exc.type.value
    except TimeoutError:
        outcome = "hung"
    return outcome, time.monotonic() - started


def test_output_floods_end_within_the_time_limit(sandbox: DenoSandbox) -> None:
    """100 runs of code that writes without end (stderr via console, stdout, both), four at
    a time: every one ends, typed, within its limit plus a small bound."""
    limits = SandboxLimits(timeout_s=0.25, memory_mb=64, max_output_bytes=100_000)
    codes = [FLOODS["console.log"]] * 44 + [c for c in FLOODS.values() for _ in range(7)]

    async def main() -> list[tuple[str, str, float]]:
        gate = asyncio.Semaphore(4)

        async def one(name: str, code: str) -> tuple[str, str, float]:
            async with gate:
                return (name, *await _timed(sandbox, code, limits))

        names = {code: name for name, code in FLOODS.items()}
        return await asyncio.gather(*(one(names[c], c) for c in codes))

    results = asyncio.run(main())
    assert len(results) == 100
    late = [(n, o, round(t, 2)) for n, o, t in results if t > limits.timeout_s + BOUND_S]
    assert not late, f"{len(late)} runs exceeded {limits.timeout_s} s + {BOUND_S} s: {late[:10]}"
    outcomes = {(n, o) for n, o, _ in results}
    allowed = {"TypeScriptTimeout", "TypeScriptOutputTooLarge"}
    assert {o for _, o in outcomes} <= allowed, outcomes
    # Endless stdout is cut by the output cap, not by the clock; the paced floods by the clock.
    assert ("stdout", "TypeScriptOutputTooLarge") in outcomes
    assert ("paced console.log", "TypeScriptTimeout") in outcomes
    assert ("fill then spin", "TypeScriptTimeout") in outcomes


def test_console_flood_is_capped(sandbox: DenoSandbox) -> None:
    """Endless console output does not keep the worker reading for the whole time limit."""
    outcome, elapsed = asyncio.run(_timed(sandbox, FLOODS["console.error"], SandboxLimits(20.0)))
    assert outcome == "TypeScriptOutputTooLarge" and elapsed < 15
    e = fails(sandbox, FLOODS["console.error"], limits=SandboxLimits(timeout_s=20.0))
    assert "more than 8000000 bytes of console output" in e.message


# -- no state between runs ------------------------------------------------------------------

_STORAGE_PROBE = """
export default async (input: { secret: string }) => {
  const seen: Record<string, unknown> = {};
  const attempt = async (what: string, f: () => unknown) => {
    try { seen[what] = await f(); } catch (e) { seen[what] = "error: " + (e as Error).message; }
  };
  await attempt("ls_before", () => localStorage.getItem("shared"));
  await attempt("ls_len_before", () => localStorage.length);
  await attempt("cache_before", () => caches.has("cache-of-" + input.secret));
  await attempt("cache_other", () => caches.has("cache-of-first"));
  await attempt("ls_write", () => { localStorage.setItem("shared", input.secret); return true; });
  await attempt("cache_write", async () => {
    const c = await caches.open("cache-of-" + input.secret);
    await c.put("http://x.invalid/" + input.secret, new Response(input.secret));
    return true;
  });
  return seen;
};
"""


def _files_containing(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_runs_share_no_storage(tmp_path: Path) -> None:
    sandbox = DenoSandbox(tmp_path / "home")
    first = run(sandbox, _STORAGE_PROBE, {"secret": "first"})
    secret = f"run-secret-{secrets.token_hex(8)}"
    second = run(sandbox, _STORAGE_PROBE, {"secret": secret})
    # The second run (another user's input) sees nothing of the first.
    assert "first" not in json.dumps(second), second
    for seen in (first, second):
        for key in ("ls_before", "ls_len_before", "cache_before", "cache_other"):
            assert seen[key] in (None, 0, False) or "not available in the sandbox" in seen[key]
        # Writing fails, clearly, and says nothing of the host.
        for key in ("ls_write", "cache_write"):
            assert "not available in the sandbox" in str(seen[key]), seen
    # ...and nothing of either run stays on disk.
    assert _files_containing(tmp_path, secret.encode()) == []
    location = sandbox.home / "cache" / "location_data"
    assert not location.is_dir()
    # Other code later sees no cache names either.
    other = "export default async () => { try { return await caches.keys(); }" + (
        " catch (e) { return String(e); } }"
    )
    assert secret not in json.dumps(run(sandbox, other))


def _disk_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def test_storage_cannot_fill_the_disk(tmp_path: Path) -> None:
    sandbox = DenoSandbox(tmp_path / "home")
    run(sandbox, "export default () => 1")  # Deno's own caches exist
    before = _disk_bytes(tmp_path)
    e = fails(
        sandbox,
        "export default () => {\n  const s = 'x'.repeat(1024 * 1024);\n"
        "  for (let i = 0; i < 200; i++) localStorage.setItem('k' + i, s);\n}",
    )
    assert e.type == "TypeScriptError" and "localStorage is not available" in e.message
    assert "user.ts:3:" in e.message
    e = fails(
        sandbox,
        "export default async () => {\n  const c = await caches.open('big');\n"
        "  const body = new Uint8Array(10 * 1024 * 1024);\n"
        "  for (let i = 0; i < 20; i++) await c.put('http://x.invalid/' + i, new Response(body));\n"
        "}",
    )
    assert e.type == "TypeScriptError" and "Cache API" in e.message
    assert str(sandbox.home) not in e.message
    grown = _disk_bytes(tmp_path) - before
    assert grown < 2 * 1024 * 1024, f"the runs left {grown} bytes on disk"


def test_a_removed_location_block_is_restored(tmp_path: Path) -> None:
    """Deno's location data lives under DENO_DIR; the sandbox keeps that path unusable."""
    sandbox = DenoSandbox(tmp_path / "home")
    location = sandbox.home / "cache" / "location_data"
    location.unlink()
    (location / "0ee2").mkdir(parents=True)  # e.g. what an older version left behind
    (location / "0ee2" / "local_storage").write_text("old data")
    assert run(sandbox, "export default () => 2") == 2
    assert location.is_file() and location.stat().st_size == 0


# -- nothing of the host's layout -----------------------------------------------------------

_HOST_PROBE = """
export default () => {
  const seen: Record<string, unknown> = {};
  const attempt = (what: string, f: () => unknown) => {
    try { seen[what] = f(); }
    catch (e) { seen[what] = "error: " + String(e) + " " + (e as Error).stack; }
  };
  attempt("cwd", () => Deno.cwd());
  attempt("execPath", () => Deno.execPath());
  attempt("mainModule", () => Deno.mainModule);
  attempt("stack", () => new Error("probe").stack);
  attempt("thrown", () => { null!.x; });
  attempt("prepared", () => {
    const prev = (Error as any).prepareStackTrace;
    (Error as any).prepareStackTrace = (_: unknown, sites: any[]) =>
      sites.map((s) => String(s.getFileName()) + " " + String(s.getScriptNameOrSourceURL()));
    try { return new Error().stack; } finally { (Error as any).prepareStackTrace = prev; }
  });
  attempt("read", () => Deno.readTextFileSync("x.txt"));
  attempt("internal", () => typeof (Deno as any)[(Deno as any).internal]);
  return seen;
};
"""


def _host_paths(sandbox: DenoSandbox) -> list[str]:
    repo = Path(__file__).resolve().parents[2]
    deno = Path(find_deno()).resolve()
    return sorted(
        {
            str(repo),
            sys.prefix,
            str(deno.parent),
            str(sandbox.home),
            str(sandbox.home / "cache"),
            tempfile.gettempdir() + "/",
            "file://",
        }
    )


def test_no_host_paths_in_values(sandbox: DenoSandbox) -> None:
    seen = run(sandbox, _HOST_PROBE)
    text = json.dumps(seen)
    for path in _host_paths(sandbox):
        assert path not in text, (path, seen)
    assert seen["cwd"] == "/"
    assert "Deno.execPath is not available" in seen["execPath"]
    assert "user.ts" in seen["stack"] or "data:application/typescript" in seen["stack"]
    assert seen["internal"] == "undefined"


def test_no_host_paths_in_errors(sandbox: DenoSandbox) -> None:
    e = fails(sandbox, "export default () => {\n  throw new Error(Deno.mainModule);\n}")
    assert "user.ts:2:9" in e.message
    compile_error = fails(sandbox, "export default () => {\n  const x: number = ;\n}")
    assert compile_error.type == "TypeScriptCompileError" and "user.ts:2:" in compile_error.message
    top = fails(sandbox, "const a = 1;\nthrow new RangeError('top ' + a);\nexport default () => 1")
    assert top.type == "TypeScriptError" and "RangeError: top 1" in top.message
    assert "user.ts:2:7" in top.message
    for message in (e.message, compile_error.message, top.message):
        for path in _host_paths(sandbox):
            assert path not in message, (path, message)
        assert "data:" not in message


def test_runtime_internals_are_out_of_reach(sandbox: DenoSandbox) -> None:
    """``Deno[Deno.internal].core.evalContext`` would evaluate strings despite the ban on
    code generation."""
    code = (
        "export default () => {\n  const core = (Deno as any)[(Deno as any).internal]?.core;\n"
        "  return core ? core.evalContext('6 * 7', 'file:///x.js')[0] : null;\n}"
    )
    assert run(sandbox, code) is None
