/** Errors the CLI reports as one `airlock: <message>` line, with their exit status. */
export class CliError extends Error {
  override readonly name = "CliError";
  /** 1 = the command failed; 2 = it was used wrongly. */
  readonly exitCode: 1 | 2;

  constructor(message: string, exitCode: 1 | 2 = 1, options?: { cause?: unknown }) {
    super(message, options);
    this.exitCode = exitCode;
  }
}
