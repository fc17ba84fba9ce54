/**
 * A command that succeeds but wants a non-zero exit status (e.g. `verify` of an
 * invalid signature) asks for it here; main() returns it. Not process.exitCode, so
 * the CLI can run in-process (tests) without touching the host process.
 */
let requested = 0;

export function requestExitCode(code: number): void {
  requested = code;
}

export function takeRequestedExitCode(): number {
  const code = requested;
  requested = 0;
  return code;
}
