/**
 * Policy globs: `*` matches any run of characters (dots included), `?` one character;
 * matching is case-insensitive, so a policy written `Users.Password` still guards the folded
 * `users.password` (over-matching a quoted mixed-case identifier is the safe direction).
 */
export class Glob {
  readonly source: string;
  readonly #re: RegExp;
  readonly #literal: string | undefined;

  constructor(pattern: string) {
    this.source = pattern;
    const lower = pattern.toLowerCase();
    if (!/[*?]/.test(lower)) {
      this.#literal = lower;
      this.#re = /^$/;
      return;
    }
    this.#literal = undefined;
    const body = lower.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
    this.#re = new RegExp(`^${body}$`, "s");
  }

  test(text: string): boolean {
    const t = text.toLowerCase();
    return this.#literal !== undefined ? t === this.#literal : this.#re.test(t);
  }
}

/** A `table.column` (or `schema.table.column`) glob, split at the last dot. */
export class ColumnGlob {
  readonly source: string;
  readonly relation: Glob;
  readonly column: Glob;

  constructor(pattern: string) {
    this.source = pattern;
    const dot = pattern.lastIndexOf(".");
    this.relation = new Glob(dot < 0 ? "*" : pattern.slice(0, dot));
    this.column = new Glob(dot < 0 ? pattern : pattern.slice(dot + 1));
  }
}

export function anyGlob(globs: readonly Glob[], text: string): boolean {
  for (const g of globs) if (g.test(text)) return true;
  return false;
}
