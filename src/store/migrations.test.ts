import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { verifyChain } from "../audit/chain.js";
import { MIGRATIONS, migrate } from "./migrations.js";
import { openPgliteClient, openSqliteClient } from "./sql.js";
import { SqlStore } from "./sql-store.js";
import { makeChain } from "./store.suite.js";

describe.each([
  ["pglite", openPgliteClient],
  ["sqlite", openSqliteClient],
] as const)("migration 3 (audit segments), %s", (_name, open) => {
  it("moves records stored one per row into segments, in order, still verifiable and readable as a view", { timeout: 120_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), "airlock-migrate-"));
    const client = await open(join(dir, "store"));
    try {
      await migrate(client, MIGRATIONS.filter((m) => m.id < 3));
      const chain = makeChain(Array.from({ length: 2_345 }, (_, i) => ({ type: "db.query" as const, sessionId: `s${i % 3}`, statement: `SELECT ${i}` })));
      // The release-1 layout: one row per record.
      for (const r of chain) {
        await client.execute("INSERT INTO audit (seq, time, type, session_id, record, hash, prev_hash) VALUES ($1, $2, $3, $4, $5, $6, $7)", [
          r.seq,
          r.time,
          r.type,
          r.sessionId ?? null,
          JSON.stringify(r),
          r.hash,
          r.prevHash,
        ]);
      }
      await migrate(client);
      const store = new SqlStore(client);
      const back = await store.readAudit(0, 10_000);
      expect(back).toEqual(chain);
      expect(await verifyChain(back, Buffer.alloc(32, 7))).toMatchObject({ ok: true, lastSeq: 2_345 });
      expect(await store.lastAudit()).toEqual(chain[chain.length - 1]);
      const rows = await client.query("SELECT count(*)::int AS n, count(DISTINCT session_id)::int AS s FROM audit WHERE type = 'db.query'", [], z.object({ n: z.number(), s: z.number() }));
      expect(rows[0]).toEqual({ n: 2_345, s: 3 });
    } finally {
      await client.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
