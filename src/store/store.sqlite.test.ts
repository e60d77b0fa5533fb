import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { GatewayError } from "../core/errors.js";
import { openStore } from "./index.js";
import { registerStoreSuite } from "./store.suite.js";

registerStoreSuite("sqlite", async () => {
  const dir = await mkdtemp(join(tmpdir(), "airlock-store-"));
  const store = await openStore({ dataDir: dir, embedded: "sqlite" });
  return {
    store,
    async cleanup() {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

describe("openStore (sqlite)", () => {
  it("is the default for a new dataDir: creates <dataDir>/sqlite and keeps data across reopen", async () => {
    const dir = await mkdtemp(join(tmpdir(), "airlock-store-"));
    try {
      const s1 = await openStore({ dataDir: join(dir, "nested") });
      expect(s1.kind).toBe("sqlite");
      expect((await stat(join(dir, "nested", "sqlite", "airlock.sqlite"))).isFile()).toBe(true);
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
      const s2 = await openStore({ dataDir: join(dir, "nested") });
      expect((await s2.getToken("t1"))?.principalName).toBe("x");
      await s2.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("refuses a second process/open on the same dataDir while the first holds it (one writer per audit chain)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "airlock-store-"));
    const s1 = await openStore({ dataDir: dir });
    try {
      const e: unknown = await openStore({ dataDir: dir }).then(
        async (s) => {
          await s.close();
          return undefined;
        },
        (err: unknown) => err,
      );
      expect(e).toBeInstanceOf(GatewayError);
      expect((e as GatewayError).code).toBe("GW_STORE");
      expect((e as GatewayError).message).toMatch(/in use by another process/);
      // The first one is unaffected.
      expect(await s1.listSessions({ limit: 1 })).toEqual([]);
    } finally {
      await s1.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
