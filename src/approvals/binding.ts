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
 *
 * An approval is also bound to what the statement acts on (core/objects.ts): the objects its
 * names resolved to when it was requested, compared again when it is released (objectDrift).
 */
import { createHash } from "node:crypto";
import type { BoundObject, ObjectBinding, ResolvedObject } from "../core/objects.js";

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

// ------------------------------------------------------------------ objects

/**
 * Where a statement's names now resolve differently from the binding it was approved under,
 * as one sentence for the client ("orders now resolves to app.orders (approved: public.orders)"),
 * or undefined when nothing changed. Objects are compared by OID and schema-qualified name:
 * a relation dropped and created again under the same name is another relation (its rows,
 * grants, triggers and policies are not the ones the approver saw), so it is drift too.
 * The search_path alone is not: it matters only through what the names resolve to.
 */
export function objectDrift(approved: ObjectBinding, now: ObjectBinding): string | undefined {
  const current = new Map(now.objects.map((o) => [objectKey(o), o]));
  const changes: string[] = [];
  const seen = new Set<string>();
  for (const a of approved.objects) {
    const key = objectKey(a);
    seen.add(key);
    const n = current.get(key);
    if (n === undefined) {
      changes.push(`${a.name} is no longer bound (approved: ${render(a.resolved)})`);
      continue;
    }
    if (sameResolution(a.resolved, n.resolved)) continue;
    const was = render(a.resolved);
    const is = render(n.resolved);
    changes.push(was === is ? `${a.name} was dropped and created again (${is}, OID ${oids(a.resolved)} now ${oids(n.resolved)})` : `${a.name} now resolves to ${is} (approved: ${was})`);
  }
  for (const n of now.objects) if (!seen.has(objectKey(n))) changes.push(`${n.name} now resolves to ${render(n.resolved)} (not in the approval)`);
  if (changes.length === 0) return undefined;
  const shown = changes.slice(0, MAX_CHANGES_SHOWN).join("; ") + (changes.length > MAX_CHANGES_SHOWN ? `; and ${changes.length - MAX_CHANGES_SHOWN} more` : "");
  const path = approved.searchPath === now.searchPath ? "" : ` (search_path now ${now.searchPath}; approved under ${approved.searchPath})`;
  return `${shown}${path}`;
}

/** The resolution people read (approval page, CLI, notifications): `orders → public.orders`. */
export function describeObjects(binding: ObjectBinding): string[] {
  return binding.objects.map((o) => `${o.kind === "function" ? `${o.name}()` : o.name} → ${render(o.resolved)}`);
}

const MAX_CHANGES_SHOWN = 5;
const MAX_SHOWN_PER_OBJECT = 4;

function objectKey(o: BoundObject): string {
  return `${o.kind}\u0000${o.name}`;
}

function sameResolution(a: readonly ResolvedObject[], b: readonly ResolvedObject[]): boolean {
  if (a.length !== b.length) return false;
  const key = (r: ResolvedObject): string => `${r.oid}\u0000${r.qualified}`;
  const bs = new Set(b.map(key));
  return a.every((r) => bs.has(key(r)));
}

function render(rs: readonly ResolvedObject[]): string {
  if (rs.length === 0) return "nothing (it does not exist)";
  const names = rs.slice(0, MAX_SHOWN_PER_OBJECT).map((r) => r.qualified);
  return names.join(", ") + (rs.length > MAX_SHOWN_PER_OBJECT ? ` and ${rs.length - MAX_SHOWN_PER_OBJECT} more` : "");
}

function oids(rs: readonly ResolvedObject[]): string {
  return rs.map((r) => String(r.oid)).join(",");
}
