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
  if (text.startsWith("env:")) return { kind: "env", name: text.slice(4) };
  if (text.startsWith("file:")) return { kind: "file", path: text.slice(5) };
  if (text.startsWith("vault:")) {
    // vault:MOUNT/PATH#FIELD — a KV v2 secret: the mount is the first segment.
    const m = /^vault:([^/#]+)\/([^#]+)#(.+)$/.exec(text);
    return m === null ? { kind: "vault", mount: "", path: "", field: "" } : { kind: "vault", mount: m[1] ?? "", path: m[2] ?? "", field: m[3] ?? "" };
  }
  return { kind: "literal", value: text };
}

export const secretRefSchema = z
  .string()
  .min(1)
  .describe("secret reference: env:NAME | file:PATH | vault:MOUNT/PATH#FIELD | literal value")
  .transform((s, ctx): SecretRef => {
    const ref = parseSecretRef(s);
    if (ref.kind === "env" && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(ref.name)) {
      ctx.addIssue({ code: "custom", message: "env: needs a variable name, e.g. env:ORDERS_PG_PASSWORD" });
    }
    if (ref.kind === "file" && ref.path.length === 0) {
      ctx.addIssue({ code: "custom", message: "file: needs a path" });
    }
    if (ref.kind === "vault" && (ref.mount === "" || ref.path === "" || ref.field === "" || ref.path.split("/").some((seg) => seg === "" || seg === "." || seg === ".."))) {
      ctx.addIssue({ code: "custom", message: "vault: needs MOUNT/PATH#FIELD, e.g. vault:secret/orders/db#password" });
    }
    return ref;
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
