// The real `meshpilot` binary, run as an operator runs it: exit code, stdout and stderr.
import { execFile } from 'node:child_process';

const BIN = new URL('../../bin/meshpilot.js', import.meta.url).pathname;

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `meshpilot ARGS` with no admin URL or token from the environment (tests pass --admin). */
export function meshpilotCli(args: readonly string[]): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 20_000, env: { ...process.env, MESHPILOT_ADMIN_URL: '', MESHPILOT_ADMIN_TOKEN: '' } }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}
