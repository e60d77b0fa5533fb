/**
 * Zod schemas that several configuration blocks share (the file's own schema in config.ts, the
 * identity and approvals blocks): one definition each, so that `30s` or `env:NAME` means the
 * same thing, with the same error, wherever it is written.
 */
import { z } from "zod";
import type { SecretRef } from "../core/secret.js";
import { parseDuration } from "./duration.js";

/** `env:NAME`, `file:PATH`, or a literal value. */
export function parseSecretRef(text: string): SecretRef {
  const r = parseSecretRefChecked(text);
  return "problem" in r ? { kind: "literal", value: text } : r.ref;
}

const SEGMENT = /^[^/#]+$/u;
const safeSegment = (s: string): boolean => SEGMENT.test(s) && s !== "." && s !== "..";

/** Splits `BODY#FIELD` at the last `#`; a `#` with nothing after it is a problem (undefined). */
function splitField(text: string): { body: string; field?: string } | undefined {
  const i = text.lastIndexOf("#");
  if (i < 0) return { body: text };
  const field = text.slice(i + 1);
  return field === "" ? undefined : { body: text.slice(0, i), field };
}

/** A reference, or the form it should have taken (the message of the config error). */
export function parseSecretRefChecked(text: string): { ref: SecretRef } | { problem: string } {
  if (text.startsWith("env:")) {
    const name = text.slice(4);
    return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name) ? { ref: { kind: "env", name } } : { problem: "env: needs a variable name, e.g. env:ORDERS_PG_PASSWORD" };
  }
  if (text.startsWith("file:")) return text.length > 5 ? { ref: { kind: "file", path: text.slice(5) } } : { problem: "file: needs a path" };
  if (text.startsWith("vault:")) {
    // vault:MOUNT/PATH#FIELD — a KV v2 secret: the mount is the first segment.
    const m = /^vault:([^/#]+)\/([^#]+)#(.+)$/.exec(text);
    const ref = m === null ? undefined : { kind: "vault" as const, mount: m[1] ?? "", path: m[2] ?? "", field: m[3] ?? "" };
    if (ref === undefined || !safeSegment(ref.mount) || !ref.path.split("/").every(safeSegment)) {
      return { problem: "vault: needs MOUNT/PATH#FIELD, e.g. vault:secret/orders/db#password" };
    }
    return { ref };
  }
  if (text.startsWith("aws-sm:")) {
    // A secret name or ARN (ARNs contain ':'; neither contains '#').
    const s = splitField(text.slice(7));
    if (s === undefined || !/^[A-Za-z0-9/_+=.@:-]{1,2048}$/u.test(s.body)) {
      return { problem: "aws-sm: needs SECRET_ID[#FIELD] (a secret name or ARN), e.g. aws-sm:prod/orders/db#password" };
    }
    return { ref: { kind: "aws-sm", secretId: s.body, ...(s.field === undefined ? {} : { field: s.field }) } };
  }
  if (text.startsWith("gcp-sm:")) {
    const s = splitField(text.slice(7));
    const m = s === undefined ? null : /^projects\/([a-z0-9-]{1,64}|[0-9]{1,20})\/secrets\/([A-Za-z0-9_-]{1,255})(?:\/versions\/(latest|[0-9]{1,20}))?$/u.exec(s.body);
    if (s === undefined || m === null) {
      return { problem: "gcp-sm: needs projects/PROJECT/secrets/SECRET[/versions/VERSION][#FIELD], e.g. gcp-sm:projects/acme/secrets/orders-db/versions/latest" };
    }
    const name = `projects/${m[1] ?? ""}/secrets/${m[2] ?? ""}/versions/${m[3] ?? "latest"}`;
    return { ref: { kind: "gcp-sm", name, ...(s.field === undefined ? {} : { field: s.field }) } };
  }
  if (text.startsWith("azure-kv:")) {
    const s = splitField(text.slice(9));
    const m = s === undefined ? null : /^([A-Za-z][A-Za-z0-9-]{1,62})\/([A-Za-z0-9-]{1,127})(?:\/([0-9a-fA-F]{32}))?$/u.exec(s.body);
    if (s === undefined || m === null) {
      return { problem: "azure-kv: needs VAULT/SECRET[/VERSION][#FIELD], e.g. azure-kv:acme-prod/orders-db-password" };
    }
    return {
      ref: { kind: "azure-kv", vault: m[1] ?? "", secret: m[2] ?? "", ...(m[3] === undefined ? {} : { version: m[3] }), ...(s.field === undefined ? {} : { field: s.field }) },
    };
  }
  return { ref: { kind: "literal", value: text } };
}

export const secretRefSchema = z
  .string()
  .min(1)
  .describe(
    "secret reference: env:NAME | file:PATH | vault:MOUNT/PATH#FIELD | aws-sm:SECRET_ID[#FIELD] | gcp-sm:projects/P/secrets/S[/versions/V][#FIELD] | azure-kv:VAULT/SECRET[/VERSION][#FIELD] | literal value",
  )
  .transform((s, ctx): SecretRef => {
    const r = parseSecretRefChecked(s);
    if ("problem" in r) {
      ctx.addIssue({ code: "custom", message: r.problem });
      return z.NEVER;
    }
    return r.ref;
  });

export const durationSchema = z
  .union([z.string(), z.number().int().nonnegative()])
  .describe("a duration: 30s, 15m, 1h, or milliseconds as a number")
  .transform((v, ctx) => {
    if (typeof v === "number") return v;
    try {
      return parseDuration(v);
    } catch {
      ctx.addIssue({ code: "custom", message: `invalid duration "${v}" (use e.g. 30s, 15m, 1h)` });
      return z.NEVER;
    }
  });

/** A name users write (connections, sinks, service accounts): safe in paths, URLs and logs. */
export const nameSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, "use letters, digits, '_', '.', '-' (at most 63, starting with a letter or digit)");
