/**
 * A subject is one tool doing one workload's unit of work. `prepare` fails (throws) when the tool
 * cannot run here, and the harness prints the reason instead of a number.
 */
export interface Subject {
  name: string;
  /** One line on what exactly is run, for the docs' "what each number includes". */
  describe: string;
  prepare?(): Promise<void>;
  /** Do the unit of work once; return its duration in ms (or the measured value); throw on failure. */
  once(): Promise<number>;
  dispose?(): Promise<void>;
}

export interface Row {
  tool: string;
  describe: string;
  samples: number[];
  failures: number;
  skipped?: string;
  firstError?: string;
}
