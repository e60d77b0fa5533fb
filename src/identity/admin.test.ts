import { mkdtemp, readFile, rm, stat, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GatewayError } from "../core/errors.js";
import { ADMIN_TOKEN_PREFIX, adminTokenMatches, readAdminToken, writeAdminToken } from "./admin.js";

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "airlock-admin-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("admin token", () => {
  it("creates the data dir 0700 and a 0600 token file, fresh at every call", async () => {
    const dataDir = join(root, "nested", "data");
    const t1 = await writeAdminToken(dataDir);
    expect(t1.startsWith(ADMIN_TOKEN_PREFIX)).toBe(true);
    // 32 random bytes in base64url = 43 characters.
    expect(t1.length).toBe(ADMIN_TOKEN_PREFIX.length + 43);
    expect((await stat(dataDir)).mode & 0o777).toBe(0o700);
    const file = join(dataDir, "admin.token");
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await readFile(file, "utf8")).trim()).toBe(t1);
    expect(await readAdminToken(dataDir)).toBe(t1);

    const t2 = await writeAdminToken(dataDir);
    expect(t2).not.toBe(t1);
    expect(await readAdminToken(dataDir)).toBe(t2);
    // No temp files left behind.
    expect(await readdir(dataDir)).toEqual(["admin.token"]);
  });

  it("readAdminToken fails with a typed error when there is no file", async () => {
    try {
      await readAdminToken(join(root, "nothing-here"));
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(GatewayError);
      expect((e as GatewayError).code).toBe("GW_AUTH_MISSING");
    }
  });

  it("compares tokens exactly", () => {
    const t = `${ADMIN_TOKEN_PREFIX}abcdef`;
    expect(adminTokenMatches(t, t)).toBe(true);
    expect(adminTokenMatches(t, `${t}x`)).toBe(false);
    expect(adminTokenMatches(t, t.slice(0, -1))).toBe(false);
    expect(adminTokenMatches(t, "")).toBe(false);
    expect(adminTokenMatches("", "")).toBe(false);
  });
});
