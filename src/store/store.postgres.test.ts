import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { startPostgres, type PgServer } from "../../test/harness/postgres.js";
import { openStore } from "./index.js";
import { migrate, MIGRATIONS } from "./migrations.js";
import { openPostgresClient } from "./sql.js";
import { registerStoreSuite } from "./store.suite.js";

let pg: PgServer | undefined;
let started: Promise<PgServer> | undefined;

/** One server for the whole file; databases per purpose. */
function server(): Promise<PgServer> {
  started ??= startPostgres({
    users: [{ name: "app", password: "secret", auth: "scram-sha-256" }],
    databases: ["store", "race"],
  }).then((s) => (pg = s));
  return started;
}

afterAll(async () => {
  await pg?.stop();
});

registerStoreSuite("postgres", async () => {
  const s = await server();
  const dir = await mkdtemp(join(tmpdir(), "airlock-store-pg-"));
  const store = await openStore({ dataDir: dir, url: s.url({ user: "app", password: "secret", database: "store" }) });
  return {
    store,
    async cleanup() {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

describe("migrations (postgres)", () => {
  let url: string;
  beforeAll(async () => {
    url = (await server()).url({ user: "app", password: "secret", database: "race" });
  });

  it("serialises concurrent migrations from several gateways (advisory lock)", async () => {
    const clients = [0, 1, 2, 3].map(() => openPostgresClient({ url }));
    try {
      const applied = await Promise.all(clients.map((c) => migrate(c)));
      // Exactly one process applied each migration; the others found it done.
      expect(applied.flat().sort()).toEqual(MIGRATIONS.map((m) => m.id).sort());
      const rows = await clients[0]!.query("SELECT id FROM schema_migrations ORDER BY id", [], z.object({ id: z.number() }));
      expect(rows.map((r) => r.id)).toEqual(MIGRATIONS.map((m) => m.id));
      expect(await migrate(clients[1]!)).toEqual([]);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  });

  it("fails with GW_STORE (and no credential in the message) when the server refuses the login", async () => {
    const bad = (await server()).url({ user: "app", password: "wrong-password-xyz", database: "store" });
    const err: unknown = await openStore({ dataDir: tmpdir(), url: bad }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: "GW_STORE" });
    expect((err as Error).message).not.toContain("wrong-password-xyz");
  });
});
