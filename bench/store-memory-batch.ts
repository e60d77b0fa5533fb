/** A valid audit chain segment for bench/store-memory.ts (store.suite.ts's makeChain imports vitest). */
import { computeHash, GENESIS_HASH } from "../src/audit/chain.js";
import type { AuditRecord } from "../src/audit/types.js";

const KEY = Buffer.alloc(32, 7);

export function makeAuditBatch(prev: AuditRecord | undefined, n: number): AuditRecord[] {
  let seq = prev?.seq ?? 0;
  let prevHash = prev?.hash ?? GENESIS_HASH;
  const out: AuditRecord[] = [];
  for (let i = 0; i < n; i++) {
    seq++;
    const base = {
      type: "db.query" as const,
      sessionId: `s${seq % 17}`,
      statement: `SELECT abalance FROM pgbench_accounts WHERE aid = ${seq}`,
      seq,
      time: new Date().toISOString(),
      prevHash,
    };
    const hash = computeHash(KEY, prevHash, base);
    prevHash = hash;
    out.push({ ...base, hash });
  }
  return out;
}
