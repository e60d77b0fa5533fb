import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { GatewayError } from "../core/errors.js";
import { openStore } from "./index.js";
import { registerStoreSuite } from "./store.suite.js";

registerStoreSuite("pglite", async () => {
  const dir = await mkdtemp(join(tmpdir(), "airlock-store-"));
  const store = await openStore({ dataDir: dir, embedded: "pglite" });
  return {
    store,
    async cleanup() {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

describe("openStore (pglite)", () => {
  it("creates <dataDir>/store and keeps data across reopen; an existing PGlite store stays the default", { timeout: 180_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), "airlock-store-"));
    try {
      const s1 = await openStore({ dataDir: join(dir, "nested"), embedded: "pglite" });
      expect((await stat(join(dir, "nested", "store"))).isDirectory()).toBe(true);
      await s1.insertToken({
        id: "t1",
        principalId: "sa:x",
        principalKind: "service_account",
        principalName: "x",
        createdAt: new Date(0),
        expiresAt: new Date(1000),
        createdBy: "admin",
      });
      await s1.close();
      await s1.close(); // idempotent
      // No choice given: the dataDir's existing PGlite store is used, not a new empty SQLite one.
      const s2 = await openStore({ dataDir: join(dir, "nested") });
      expect(s2.kind).toBe("pglite");
      expect((await s2.getToken("t1"))?.principalName).toBe("x");
      await s2.close();
      // Asking for SQLite over it is refused (nothing is converted; nothing starts empty).
      const e: unknown = await openStore({ dataDir: join(dir, "nested"), embedded: "sqlite" }).catch((err: unknown) => err);
      expect(e).toBeInstanceOf(GatewayError);
      expect((e as GatewayError).code).toBe("GW_CONFIG");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
