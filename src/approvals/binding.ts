/**
 * What an async approval is bound to: the principal, the connection and the exact statement
 * (plus its bind parameters when known). The statement is compared as sent, except for
 * surrounding whitespace and trailing semicolons: rewriting anything inside it (even
 * whitespace, which may sit inside a string literal) could make two different statements
 * compare equal.
 */
import { createHash } from "node:crypto";

export function normalizeStatement(text: string): string {
  return text.trim().replace(/[\s;]+$/u, "");
}

export function statementHash(principalId: string, connection: string, text: string, params?: readonly (string | null)[]): string {
  const h = createHash("sha256");
  // Length-prefixed fields: no two different inputs share an encoding.
  for (const part of [principalId, connection, normalizeStatement(text), params === undefined ? "" : JSON.stringify(params)]) {
    h.update(`${Buffer.byteLength(part, "utf8")}:`);
    h.update(part, "utf8");
  }
  return h.digest("hex");
}
