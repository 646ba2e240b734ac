"""The TypeScript sandbox against real Deno: what user code can and cannot do.

Every escape attempt is asserted to fail with a clear, typed error; secrets planted in
the worker's environment and on disk never reach the output.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from tests.components.conftest import Runner, node
from wfmon.components import DenoSandbox, SandboxError, SandboxLimits

# Generous wall clock: a loaded CI machine can take seconds to start Deno; the timeout
# tests set their own short limits.
FAST = SandboxLimits(timeout_s=10.0, memory_mb=64, max_output_bytes=100_000)


def run(sandbox: DenoSandbox, code: str, value: Any = None, limits: SandboxLimits = FAST) -> Any:
    return asyncio.run(sandbox.run(code, value, limits))


def fails(
    sandbox: DenoSandbox, code: str, value: Any = None, limits: SandboxLimits = FAST
) -> SandboxError:
    with pytest.raises(SandboxError) as info:
        run(sandbox, code, value, limits)
    return info.value


def test_returns_value_and_awaits(sandbox: DenoSandbox) -> None:
    code = """
    interface In { n: number; items: string[] }
    export default async function (input: In) {
      console.log("logs go to stderr, not into the result");
      await new Promise((r) => setTimeout(r, 5));
      return { double: input.n * 2, upper: input.items.map((s) => s.toUpperCase()) };
    }
    """
    assert run(sandbox, code, {"n": 21, "items": ["a", "b"]}) == {"double": 42, "upper": ["A", "B"]}
    assert run(sandbox, "export default () => undefined") is None


def test_errors_carry_user_line_numbers(sandbox: DenoSandbox, tmp_path: Path) -> None:
    thrown = fails(
        sandbox, "const a = 1;\n\nexport default function () {\n  throw new Error('boom');\n}\n"
    )
    assert thrown.type == "TypeScriptError"
    assert thrown.message.startswith("Error: boom") and "user.ts:4:9" in thrown.message
    compile_error = fails(sandbox, "export default function () {\n  const x: number = ;\n}\n")
    assert compile_error.type == "TypeScriptCompileError" and "user.ts:2:" in compile_error.message
    # Host paths never leak into messages.
    assert str(sandbox.home) not in thrown.message + compile_error.message
    no_default = fails(sandbox, "export const x = 1;")
    assert "export default function" in no_default.message


def test_no_file_access_by_api_or_import(sandbox: DenoSandbox, tmp_path: Path) -> None:
    secret = tmp_path / "secret.json"
    secret.write_text('{"token": "file-secret-123"}')
    e = fails(sandbox, f"export default () => Deno.readTextFileSync({str(secret)!r})")
    assert "Requires read access" in e.message
    e = fails(sandbox, "export default async () => await Deno.writeTextFile('/tmp/x', 'y')")
    assert "Requires write access" in e.message
    # Deno does not permission-check module loading, so imports are refused up front.
    for code in (
        f"import s from {str(secret)!r} with {{ type: 'json' }};\nexport default () => s",
        f"export default async () =>\n"
        f"  await import({str(secret)!r}, {{ with: {{ type: 'json' }} }})",
        f"export {{ default }} from {str(secret)!r};",
        "export default async () =>\n"
        "  (await import('data:text/javascript,export default 1')).default",
    ):
        e = fails(sandbox, code)
        assert e.type == "TypeScriptForbidden" and "imports are not available" in e.message
    # ...nor assembled at run time.
    for code in (
        "export default () => (0, eval)('1 + 1')",
        "export default () => (() => {}).constructor('return 1')()",
        "export default () => new (globalThis as any).Worker('data:text/javascript,1')",
        "export default () => setTimeout('globalThis.x = 1', 0)",
    ):
        e = fails(sandbox, code)
        assert e.type == "TypeScriptError"
        assert any(
            why in e.message
            for why in (
                "Code generation from strings disallowed",
                "not a constructor",
                "must be of type function",
            )
        )
    assert "file-secret-123" not in e.message


def test_no_env_network_or_subprocess(
    sandbox: DenoSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WFMON_TEST_SECRET", "env-secret-456")
    e = fails(sandbox, "export default () => Deno.env.get('WFMON_TEST_SECRET')")
    assert "Requires env access" in e.message
    e = fails(sandbox, "export default () => Deno.env.toObject()")
    assert "Requires env access" in e.message
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    try:
        e = fails(
            sandbox, f"export default async () => (await fetch('http://127.0.0.1:{port}/')).status"
        )
        assert "Requires net access" in e.message
        e = fails(
            sandbox, f"export default async () => {{ await Deno.connect({{ port: {port} }}); }}"
        )
        assert "Requires net access" in e.message
    finally:
        listener.close()
    e = fails(
        sandbox,
        "export default async () =>\n"
        "  (await new Deno.Command('/bin/sh', { args: ['-c', 'id'] }).output()).code",
    )
    assert "Requires run access" in e.message


def test_cannot_exit_early(sandbox: DenoSandbox) -> None:
    e = fails(sandbox, "export default () => { Deno.exit(0); }")
    assert e.type == "TypeScriptError" and "Deno.exit is not allowed" in e.message
    e = fails(sandbox, "Deno.exit(3);\nexport default () => 1")  # module top level too
    assert "Deno.exit is not allowed" in e.message
    e = fails(sandbox, "export default () => { (globalThis as any).close(); }")
    assert "close() is not allowed" in e.message


def test_infinite_loop_is_killed_at_the_timeout(sandbox: DenoSandbox) -> None:
    started = time.monotonic()
    e = fails(sandbox, "export default () => { for (;;) {} }", limits=SandboxLimits(timeout_s=1.0))
    assert e.type == "TypeScriptTimeout" and "longer than 1 s" in e.message
    assert time.monotonic() - started < 3
    # A loop that never yields at module top level, and an unresolved promise.
    assert (
        fails(
            sandbox, "while (true) {}\nexport default () => 1", limits=SandboxLimits(timeout_s=1.0)
        ).type
        == "TypeScriptTimeout"
    )
    # A promise that never settles ends the process (empty event loop): an error, at once.
    e = fails(sandbox, "export default () => new Promise(() => {})")
    assert e.type == "TypeScriptError" and "never resolved" in e.message


def test_memory_bombs_hit_the_cap(sandbox: DenoSandbox) -> None:
    heap = fails(
        sandbox,
        "export default () => {\n"
        "  const a: string[] = [];\n  for (;;) a.push('x'.repeat(1e6) + a.length);\n}",
    )
    assert heap.type == "TypeScriptMemoryLimit" and "64 MB" in heap.message
    buffer = fails(sandbox, "export default () => new Uint8Array(3e9).length")
    assert buffer.type == "TypeScriptMemoryLimit"


def test_huge_outputs_are_refused(sandbox: DenoSandbox) -> None:
    e = fails(sandbox, "export default () => 'x'.repeat(500_000)")
    assert e.type == "TypeScriptOutputTooLarge"
    e = fails(
        sandbox,
        "export default () => {\n"
        "  for (let i = 0; i < 1e5; i++) Deno.stdout.writeSync(new Uint8Array(1024));\n}",
    )
    assert e.type == "TypeScriptOutputTooLarge"
    e = fails(sandbox, "export default () => { const a: any = {}; a.self = a; return a }")
    assert "not JSON-serializable" in e.message


def test_prototype_tricks_on_the_input(sandbox: DenoSandbox) -> None:
    value = {"__proto__": {"isAdmin": True}, "constructor": {"prototype": {"polluted": 1}}}
    seen = run(
        sandbox,
        """
    export default (input: any) => ({
      ownProto: Object.prototype.hasOwnProperty.call(input, "__proto__"),
      inheritedAdmin: ({} as any).isAdmin ?? null,
      inputAdmin: input.isAdmin ?? null,
      polluted: ({} as any).polluted ?? null,
      protoIsObject: Object.getPrototypeOf(input) === Object.prototype,
    })
    """,
        value,
    )
    assert seen == {
        "ownProto": True,
        "inheritedAdmin": None,
        "inputAdmin": None,
        "polluted": None,
        "protoIsObject": True,
    }
    # Built-in prototypes are frozen: polluting them (to tamper with the harness's
    # JSON.stringify or promise handling) fails loudly.
    for code in (
        "export default () => { (Object.prototype as any).toJSON = () => 'pwned'; return 1 }",
        "export default () => { (Promise.prototype as any).then = () => 0; return 1 }",
        "export default () => { (JSON as any).stringify = () => '\"forged\"'; return 1 }",
        "export default () => { (Array.prototype as any).map = null; return 1 }",
        "(Object.prototype as any).early = 1;\nexport default () => 1",
    ):
        e = fails(sandbox, code)
        assert e.type == "TypeScriptError" and "TypeError" in e.message


def test_warm_run_reuses_the_cache(sandbox: DenoSandbox) -> None:
    code = f"export default (i: number) => i + {os.getpid()}"
    run(sandbox, code, 1)
    started = time.perf_counter()
    assert run(sandbox, code, 1) == 1 + os.getpid()
    assert time.perf_counter() - started < 1.0


def test_in_a_builder_workflow(run_nodes: Runner) -> None:
    out = run_nodes(
        [
            node("make", "transform", {"set": {"prices": [1.5, 2.25, 3]}}),
            node(
                "sum",
                "typescript-processor",
                {
                    "code": """
              type Doc = { workflow: { tax: number }, upstream: { make: { prices: number[] } } };
              export default (doc: Doc) => {
                const net = doc.upstream.make.prices.reduce((a, b) => a + b, 0);
                return { net, gross: net * (1 + doc.workflow.tax) };
              };
            """
                },
            ),
            node(
                "broken",
                "typescript-processor",
                {"code": "export default () => {\n  null!.x;\n}"},
                attempts=3,
            ),
        ],
        edges=[{"source": "make", "target": "sum"}, {"source": "sum", "target": "broken"}],
        workflow_input={"tax": 0.1},
    )
    assert out.error is not None and out.error.type == "TypeScriptError"
    assert "user.ts:2:" in out.error.message and out.error.non_retryable
    assert out.attempts["broken"] == 1 and out.attempts["sum"] == 1
