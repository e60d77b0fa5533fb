/**
 * Audit verification, streaming (bounded memory) over the store and over the local file.
 *
 * What is detected:
 * - an edited record (hash_mismatch), a record forged or re-linked without the key
 *   (hash_mismatch / chain_broken), a removed or reordered record (sequence_gap), a record the
 *   schema does not allow, including extra fields (malformed);
 * - removal of the NEWEST records ("tail truncation"), which a chain alone cannot reveal, by
 *   anchoring: the store is checked against the local file's head and the file against the
 *   store's head (`verifyAudit`). Either copy ending early, or holding a different record at
 *   the other's head seq, fails verification.
 *
 * What is not detected: an attacker who holds the key (it lives in `<dataDir>`, mode 0600), or
 * who truncates BOTH copies consistently. Records appended but not yet shipped look like a
 * truncated store: call `AuditLog.flush()` before verifying a running gateway's store.
 */
import { z } from "zod";
import { isGatewayError } from "../core/errors.js";
import type { AuditChainReader, Store } from "../store/types.js";
import { verifyChain, type VerifyChainOptions } from "./chain.js";
import { readAuditFileHead, readLines, type AuditHead } from "./file.js";
import type { AuditRecord, AuditVerifyResult } from "./types.js";

export type { AuditHead } from "./file.js";

const PAGE = 1_000;

/** Stands in for a stored record that does not even parse; verifyChain reports it as malformed. */
const UNREADABLE = Object.freeze({ unreadable: true });

function isShapeError(e: unknown): boolean {
  return isGatewayError(e) && e.code === "GW_STORE" && e.cause instanceof z.ZodError;
}

async function* storeRecords(store: AuditChainReader): AsyncGenerator {
  let after = 0;
  for (;;) {
    let page: readonly AuditRecord[];
    try {
      page = await store.readAudit(after, PAGE);
    } catch (e) {
      if (!isShapeError(e)) throw e;
      // Some record in this page is malformed: step one by one to hand verifyChain the exact one.
      try {
        page = await store.readAudit(after, 1);
      } catch (e2) {
        if (!isShapeError(e2)) throw e2;
        yield UNREADABLE;
        return;
      }
    }
    if (page.length === 0) return;
    for (const r of page) yield r;
    const last = page[page.length - 1];
    if (last === undefined) return;
    after = last.seq;
  }
}

export interface AnchorOptions {
  /** The other copy's head: this copy must reach it and hold the same record there. */
  readonly anchor?: AuditHead;
  /** What the anchor is, for messages (default: the local audit log). */
  readonly anchorName?: string;
}

/** Wraps a record stream, remembering the hash seen at `seq`. */
function watch(records: AsyncIterable<unknown>, seq: number | undefined): { stream: AsyncIterable<unknown>; seen(): string | undefined } {
  let hash: string | undefined;
  return {
    stream: (async function* () {
      for await (const r of records) {
        if (seq !== undefined && typeof r === "object" && r !== null && "seq" in r && r.seq === seq && "hash" in r && typeof r.hash === "string") {
          hash = r.hash;
        }
        yield r;
      }
    })(),
    seen: () => hash,
  };
}

function checkAnchor(result: AuditVerifyResult, anchor: AuditHead | undefined, seenHash: string | undefined, copy: string, other: string): AuditVerifyResult {
  if (!result.ok || anchor === undefined) return result;
  if (anchor.seq > result.lastSeq) {
    return {
      ok: false,
      records: result.records,
      failedSeq: result.lastSeq + 1,
      reason: "sequence_gap",
      detail: `${copy} ends at seq ${result.lastSeq} but ${other} reaches seq ${anchor.seq}: records ${result.lastSeq + 1}..${anchor.seq} are missing (removed, or not shipped yet)`,
    };
  }
  if (seenHash !== undefined && seenHash !== anchor.hash) {
    return {
      ok: false,
      records: result.records,
      failedSeq: anchor.seq,
      reason: "chain_broken",
      detail: `record ${anchor.seq} in ${copy} differs from the one in ${other}`,
    };
  }
  return result;
}

/** Verify the store's chain from seq 1, page by page. */
export async function verifyAuditStore(store: AuditChainReader, key: Buffer, options: AnchorOptions = {}): Promise<AuditVerifyResult> {
  const w = watch(storeRecords(store), options.anchor?.seq);
  const result = await verifyChain(w.stream, key);
  return checkAnchor(result, options.anchor, w.seen(), "the store", options.anchorName ?? "the local audit log");
}

async function* fileRecords(path: string): AsyncGenerator {
  for await (const line of readLines(path)) {
    if (line.torn) {
      yield UNREADABLE; // a partially written last line
      return;
    }
    let json: unknown;
    try {
      json = JSON.parse(line.text);
    } catch {
      json = UNREADABLE;
    }
    yield json;
  }
}

async function fileFirstSeq(path: string): Promise<number | undefined> {
  for await (const r of fileRecords(path)) {
    return typeof r === "object" && r !== null && "seq" in r && typeof r.seq === "number" ? r.seq : undefined;
  }
  return undefined;
}

export interface VerifyFileOptions extends VerifyChainOptions, AnchorOptions {}

/**
 * Verify the local audit file. By default its first record may have any seq (the log may have
 * continued a chain whose start is only in the store); pass `firstSeq`/`firstPrevHash` to pin it.
 * A missing file verifies as empty.
 */
export async function verifyAuditFile(path: string, key: Buffer, options: VerifyFileOptions = {}): Promise<AuditVerifyResult> {
  let first: number | undefined;
  try {
    first = options.firstSeq ?? (await fileFirstSeq(path)) ?? 1;
  } catch (e) {
    if (typeof e === "object" && e !== null && "code" in e && e.code === "ENOENT") {
      return checkAnchor({ ok: true, records: 0, lastSeq: 0 }, options.anchor, undefined, "the local audit log", "the store");
    }
    throw e;
  }
  const w = watch(fileRecords(path), options.anchor?.seq);
  const result = await verifyChain(w.stream, key, {
    firstSeq: first,
    ...(options.firstPrevHash === undefined ? {} : { firstPrevHash: options.firstPrevHash }),
  });
  return checkAnchor(result, options.anchor, w.seen(), "the local audit log", "the store");
}

/**
 * Verify both copies and anchor each to the other's head (see the module comment). Returns the
 * first failure, or ok with the store's count and last seq. Without `filePath` only the store
 * is checked (and tail truncation of the store cannot be detected).
 */
export async function verifyAudit(options: { store: Store; key: Buffer; filePath?: string }): Promise<AuditVerifyResult> {
  const { store, key, filePath } = options;
  let fileHead: AuditRecord | undefined;
  if (filePath !== undefined) {
    try {
      fileHead = await readAuditFileHead(filePath);
    } catch (e) {
      if (!isGatewayError(e)) throw e;
      // Torn or unparsable last line: let the file pass below pinpoint it.
      const r = await verifyAuditFile(filePath, key);
      if (!r.ok) return r;
      throw e;
    }
  }
  const storeResult = await verifyAuditStore(store, key, fileHead === undefined ? {} : { anchor: { seq: fileHead.seq, hash: fileHead.hash } });
  if (!storeResult.ok || filePath === undefined) return storeResult;

  const storeHead = await store.lastAudit();
  const first = await fileFirstSeq(filePath).catch(() => undefined);
  let firstPrevHash: string | undefined;
  if (first !== undefined && first > 1) {
    firstPrevHash = (await store.readAudit(first - 2, 1))[0]?.hash;
  }
  const fileResult = await verifyAuditFile(filePath, key, {
    ...(first === undefined ? {} : { firstSeq: first }),
    ...(firstPrevHash === undefined ? {} : { firstPrevHash }),
    ...(storeHead === undefined ? {} : { anchor: { seq: storeHead.seq, hash: storeHead.hash } }),
  });
  if (!fileResult.ok) return fileResult;
  return storeResult;
}

/** One chain's verdict in a shared store (issue 18: a chain per gateway instance). */
export type ChainVerifyResult = AuditVerifyResult & { readonly chain: string };

export type MultiChainVerifyResult = AuditVerifyResult & { readonly chains: readonly ChainVerifyResult[] };

/**
 * Verify every audit chain in the store: this gateway's own against its local file (verifyAudit),
 * and each chain against the head its instance registered in the store (`gateway_instances`),
 * so a chain cut short, edited at its head, or missing altogether (registered with records but
 * none stored) fails. Every chain needs the same audit key (gateways sharing a store share
 * `keys/audit.key`). Ok only when every chain is; otherwise the first failing chain's fields,
 * its detail prefixed with the chain's name.
 */
export async function verifyAllAudit(options: { store: Store; key: Buffer; filePath?: string }): Promise<MultiChainVerifyResult> {
  const { store, key } = options;
  const self = store.instanceId;
  const own = await verifyAudit(options);
  if (self === undefined || store.instances === undefined || store.chain === undefined) return { ...own, chains: [{ ...own, chain: self ?? "default" }] };
  const registered = new Map((await store.instances.list()).map((i) => [i.id, i]));
  const chains: ChainVerifyResult[] = [];
  for (const id of await store.instances.chainIds()) {
    const inst = registered.get(id);
    const anchor = inst !== undefined && inst.auditSeq > 0 && inst.auditHash !== undefined ? { seq: inst.auditSeq, hash: inst.auditHash } : undefined;
    const reader = id === self ? store : store.chain(id);
    let r: AuditVerifyResult;
    if (anchor !== undefined && (await reader.lastAudit()) === undefined) {
      r = { ok: false, records: 0, failedSeq: 1, reason: "sequence_gap", detail: `the chain is missing: instance ${id} registered records up to seq ${anchor.seq}` };
    } else {
      r = await verifyAuditStore(reader, key, { ...(anchor === undefined ? {} : { anchor }), anchorName: `the head registered for instance ${id}` });
    }
    if (id === self && r.ok && !own.ok) r = own;
    chains.push({ ...r, chain: id });
  }
  if (!chains.some((c) => c.chain === self)) chains.push({ ...own, chain: self });
  const failed = chains.find((c): c is Extract<ChainVerifyResult, { ok: false }> => !c.ok);
  if (failed !== undefined) {
    return { ok: false, records: chains.reduce((n, c) => n + c.records, 0), failedSeq: failed.failedSeq, reason: failed.reason, detail: `chain ${failed.chain}: ${failed.detail}`, chains };
  }
  return { ok: true, records: chains.reduce((n, c) => n + c.records, 0), lastSeq: own.ok ? own.lastSeq : 0, chains };
}
