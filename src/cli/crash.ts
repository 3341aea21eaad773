// The last line a process writes when something nobody caught went wrong: the error and its
// stack as one JSON log line (pino's shape, level fatal), then a non-zero exit so a supervisor
// restarts zkroute instead of it running on in an unknown state.
export const CRASH_EXIT_CODE = 70; // EX_SOFTWARE

/** Installs the process-level handlers (the CLI's entry point calls it once). */
export function installCrashHandler(write: (line: string) => void = (line) => process.stderr.write(line)): void {
  const crash = (kind: string) => (reason: unknown) => {
    const err = reason instanceof Error ? reason : new Error(String(reason));
    write(`${JSON.stringify({ level: 60, time: Date.now(), pid: process.pid, msg: `${kind}; exiting`, err: { type: err.name, message: err.message, stack: err.stack } })}\n`);
    process.exit(CRASH_EXIT_CODE);
  };
  process.on('uncaughtException', crash('uncaught exception'));
  process.on('unhandledRejection', crash('unhandled promise rejection'));
}
