import type { ErrorCode } from "./errors.js";

/**
 * What the pipeline decided about a judged event. Engines render it in their protocol:
 * `allow` forwards; `deny` becomes a native error (PostgreSQL ErrorResponse 42501, …).
 */
export type Decision = AllowDecision | DenyDecision;

export interface AllowDecision {
  readonly type: "allow";
  /** The rule that explicitly allowed it, if any. */
  readonly rule?: string;
}

export interface DenyDecision {
  readonly type: "deny";
  readonly code: ErrorCode;
  readonly rule?: string;
  /** Client-facing message; engines prefix it with `airlock: `. Never contains secrets. */
  readonly message: string;
}

export const ALLOW: AllowDecision = Object.freeze({ type: "allow" });

export function deny(code: ErrorCode, message: string, rule?: string): DenyDecision {
  return rule === undefined ? { type: "deny", code, message } : { type: "deny", code, message, rule };
}
