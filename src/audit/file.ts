/**
 * The local audit file: JSON lines, one AuditRecord per line, each terminated by "\n".
 * A file whose last byte is not "\n" ends in a torn (partially written) record.
 */
import { open, type FileHandle } from "node:fs/promises";
import { GatewayError } from "../core/errors.js";
import { auditRecordSchema } from "./chain.js";
import type { AuditRecord } from "./types.js";

/** Records are normally < 1 KiB; a statement can make one large. Beyond this we refuse. */
export const MAX_AUDIT_LINE_BYTES = 256 * 1024 * 1024;

const NL = 0x0a;

/** Parse one line (without its "\n") into a record, or undefined when it is not one. */
export function parseRecordLine(line: string): AuditRecord | undefined {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    return undefined;
  }
  const r = auditRecordSchema.safeParse(json);
  return r.success ? r.data : undefined;
}

/**
 * Parse a line for shipping to the store: the gateway wrote it itself moments ago, so only the
 * fields the store indexes are checked here (the full schema check costs more than the rest of
 * shipping). Content is verified end to end by `airlock audit verify`, which re-hashes records.
 */
export function parseShippedLine(line: string): AuditRecord | undefined {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof json !== "object" || json === null) return undefined;
  const r = json as Partial<Record<keyof AuditRecord, unknown>>;
  if (typeof r.seq !== "number" || typeof r.hash !== "string" || typeof r.prevHash !== "string" || typeof r.time !== "string" || typeof r.type !== "string") {
    return undefined;
  }
  return json as AuditRecord;
}

export type LastLine =
  | { readonly kind: "empty" }
  | { readonly kind: "torn" } // the file does not end with "\n"
  | { readonly kind: "line"; readonly text: string; readonly offset: number };

/** Read the last complete line of a file of `size` bytes, scanning backwards in chunks. */
export async function readLastLine(fh: FileHandle, size: number): Promise<LastLine> {
  if (size === 0) return { kind: "empty" };
  const one = Buffer.alloc(1);
  await fh.read(one, 0, 1, size - 1);
  if (one[0] !== NL) return { kind: "torn" };
  const end = size - 1; // exclusive end of the last line's text
  const chunks: Buffer[] = [];
  let pos = end;
  const CHUNK = 64 * 1024;
  while (pos > 0) {
    const len = Math.min(CHUNK, pos);
    const buf = Buffer.alloc(len);
    await fh.read(buf, 0, len, pos - len);
    const nl = buf.lastIndexOf(NL);
    if (nl >= 0) {
      chunks.unshift(buf.subarray(nl + 1));
      pos = pos - len + nl + 1;
      break;
    }
    chunks.unshift(buf);
    pos -= len;
    if (end - pos > MAX_AUDIT_LINE_BYTES) throw new GatewayError("GW_AUDIT_UNAVAILABLE", "the last audit record is larger than any record the gateway writes");
  }
  return { kind: "line", text: Buffer.concat(chunks).toString("utf8"), offset: pos };
}

/**
 * Iterate the complete lines of a file from `start` (bounded memory: one chunk plus one line).
 * `offset` is where the line starts and `next` where the following one does (raw bytes).
 * A final segment without "\n" is yielded with `torn: true`.
 */
export async function* readLines(path: string, start = 0): AsyncGenerator<{ text: string; offset: number; next: number; torn: boolean }> {
  const fh = await open(path, "r");
  try {
    const buf = Buffer.alloc(1024 * 1024);
    let carry: Buffer[] = [];
    let carryLen = 0;
    let lineStart = start;
    let pos = start;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      let from = 0;
      for (;;) {
        const nl = buf.indexOf(NL, from);
        if (nl < 0 || nl >= bytesRead) break;
        const piece = buf.subarray(from, nl);
        const text = carryLen === 0 ? piece.toString("utf8") : Buffer.concat([...carry, piece]).toString("utf8");
        yield { text, offset: lineStart, next: pos + nl + 1, torn: false };
        carry = [];
        carryLen = 0;
        lineStart = pos + nl + 1;
        from = nl + 1;
      }
      if (from < bytesRead) {
        carry.push(Buffer.from(buf.subarray(from, bytesRead)));
        carryLen += bytesRead - from;
        if (carryLen > MAX_AUDIT_LINE_BYTES) throw new GatewayError("GW_AUDIT_UNAVAILABLE", "an audit record is larger than any record the gateway writes");
      }
      pos += bytesRead;
    }
    if (carryLen > 0) yield { text: Buffer.concat(carry).toString("utf8"), offset: lineStart, next: pos, torn: true };
  } finally {
    await fh.close();
  }
}

export interface AuditHead {
  readonly seq: number;
  readonly hash: string;
}

/**
 * The head (last record) of a local audit file, or undefined when the file is missing or empty.
 * Throws GW_AUDIT_UNAVAILABLE when the last record is torn or not a record.
 */
export async function readAuditFileHead(path: string): Promise<AuditRecord | undefined> {
  let fh: FileHandle;
  try {
    fh = await open(path, "r");
  } catch (e) {
    if (typeof e === "object" && e !== null && "code" in e && e.code === "ENOENT") return undefined;
    throw new GatewayError("GW_AUDIT_UNAVAILABLE", `cannot read the audit log ${path}`, { cause: e });
  }
  try {
    const last = await readLastLine(fh, (await fh.stat()).size);
    switch (last.kind) {
      case "empty":
        return undefined;
      case "torn":
        throw new GatewayError(
          "GW_AUDIT_UNAVAILABLE",
          `the audit log ${path} ends in a partially written record (the gateway stopped mid-write); ` +
            "verify it with `airlock audit verify`, then remove the incomplete last line to continue",
        );
      case "line": {
        const r = parseRecordLine(last.text);
        if (r === undefined) {
          throw new GatewayError(
            "GW_AUDIT_UNAVAILABLE",
            `the last line of the audit log ${path} (at byte ${last.offset}) is not a valid audit record; the log may have been damaged or edited`,
          );
        }
        return r;
      }
    }
  } finally {
    await fh.close();
  }
}
