/**
 * What an async approval is bound to: the principal, the connection and the exact statement
 * (plus its bind parameters when known). The statement is compared as sent, except for
 * surrounding whitespace and trailing semicolons: rewriting anything inside it (even
 * whitespace, which may sit inside a string literal) could make two different statements
 * compare equal.
 *
 * Bind parameters are bound as the raw bytes the client sent, with each value's format code
 * and declared type (protocol-message-formats "Bind", "Parse"), never as their rendering for
 * people, which is capped: two long values that differ only beyond the cap must not match.
 */
import { createHash } from "node:crypto";

/** The raw parameters of one Bind (a structural subset of the pipeline's BoundParams). */
export interface ParamBinding {
  readonly values: readonly (Uint8Array | null)[];
  /** As in Bind: empty = all text, one entry = applies to all, else one per value. */
  readonly formats: readonly number[];
  /** Type OIDs declared at Parse (0 or missing = unspecified). */
  readonly types: readonly number[];
}

export function normalizeStatement(text: string): string {
  return text.trim().replace(/[\s;]+$/u, "");
}

export function statementHash(principalId: string, connection: string, text: string, params?: ParamBinding): string {
  const h = createHash("sha256");
  // Length-prefixed fields: no two different inputs share an encoding.
  for (const part of [principalId, connection, normalizeStatement(text)]) {
    h.update(`${Buffer.byteLength(part, "utf8")}:`);
    h.update(part, "utf8");
  }
  const n = params?.values.length ?? 0;
  if (params === undefined || n === 0) {
    // No parameters: the same statement sent by the simple protocol or as a Bind without
    // values (and the encoding approvals made before parameters were bound used).
    h.update("0:");
    return h.digest("hex");
  }
  h.update(`p${n}:`);
  const { formats, types } = params;
  for (let i = 0; i < n; i++) {
    const v = params.values[i] ?? null;
    const format = formats.length === 0 ? 0 : formats.length === 1 ? (formats[0] ?? 0) : (formats[i] ?? 0);
    // Type, format and length (-1 = NULL) before the bytes: each value's encoding is unambiguous.
    h.update(`${types[i] ?? 0}:${format}:${v === null ? -1 : v.length}:`);
    if (v !== null) h.update(v);
  }
  return h.digest("hex");
}
