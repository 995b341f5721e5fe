// Log lines for rejected objects and rule warnings: each once, when it first appears, and never a
// flood: past a limit per publish, one line counts the rest (/debug/configz lists them all).
import type { Logger } from '../log.ts';

export interface LoggedProblem {
  /** Identity of the problem; the same problem on the next publish is not logged again. */
  readonly signature: string;
  readonly fields: Record<string, unknown>;
  readonly message: string;
}

/** New problems logged one line each per publish; the rest are counted in one line. */
export const PROBLEM_LINES_PER_PUBLISH = 20;

export class ProblemLog {
  #logged = new Set<string>();
  readonly #log: Logger;
  readonly #limit: number;

  constructor(log: Logger, limit = PROBLEM_LINES_PER_PUBLISH) {
    this.#log = log;
    this.#limit = limit;
  }

  report(problems: Iterable<LoggedProblem>): void {
    const current = new Set<string>();
    let fresh = 0;
    let unlogged = 0;
    for (const problem of problems) {
      if (current.has(problem.signature)) continue;
      current.add(problem.signature);
      if (this.#logged.has(problem.signature)) continue;
      fresh++;
      if (fresh > this.#limit) unlogged++;
      else this.#log.warn(problem.fields, problem.message);
    }
    if (unlogged > 0) {
      this.#log.warn({ unlogged }, `and ${unlogged} more new problems not logged one by one: /debug/configz (or meshpilot analyze) lists every one`);
    }
    this.#logged = current;
  }
}
