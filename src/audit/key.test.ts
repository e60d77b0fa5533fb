import { chmod, mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadOrCreateKey, loadOrCreateSecretFile } from "./key.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "airlock-key-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("loadOrCreateKey", () => {
  it("creates 32 random bytes with mode 0600 (and a 0700 parent), then returns the same key", async () => {
    const path = join(dir, "sub", "audit.key");
    const k1 = await loadOrCreateKey(path);
    expect(k1.length).toBe(32);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, "sub"))).mode & 0o777).toBe(0o700);
    expect(await readFile(path)).toEqual(k1);
    expect(await loadOrCreateKey(path)).toEqual(k1);
    const other = await loadOrCreateKey(join(dir, "other.key"));
    expect(other.equals(k1)).toBe(false);
    // No temp files left behind.
    expect((await readdir(join(dir, "sub"))).sort()).toEqual(["audit.key"]);
  });

  it("gives every concurrent caller the same key", async () => {
    const path = join(dir, "race.key");
    const keys = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateKey(path)));
    for (const k of keys) expect(k.equals(keys[0]!)).toBe(true);
    expect(await readFile(path)).toEqual(keys[0]);
  });

  it("refuses a group/world readable file with GW_CONFIG naming the file and the fix", async () => {
    const path = join(dir, "open.key");
    await writeFile(path, Buffer.alloc(32, 1));
    await chmod(path, 0o644);
    const err = await loadOrCreateKey(path).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "GW_CONFIG" });
    expect((err as Error).message).toContain(path);
    expect((err as Error).message).toContain("chmod 600");
    // The secret itself is never part of the message.
    expect((err as Error).message).not.toContain(Buffer.alloc(32, 1).toString("hex"));
  });

  it("refuses an empty or short key file", async () => {
    const empty = join(dir, "empty.key");
    await writeFile(empty, "", { mode: 0o600 });
    await expect(loadOrCreateKey(empty)).rejects.toMatchObject({ code: "GW_CONFIG" });
    const short = join(dir, "short.key");
    await writeFile(short, Buffer.alloc(8), { mode: 0o600 });
    await expect(loadOrCreateKey(short)).rejects.toMatchObject({ code: "GW_CONFIG" });
  });
});

describe("loadOrCreateSecretFile", () => {
  it("stores what the creator returns, and does not call it when the file exists", async () => {
    const path = join(dir, "signing.key");
    let calls = 0;
    const make = (): Buffer => {
      calls++;
      return Buffer.from("secret-material");
    };
    expect((await loadOrCreateSecretFile(path, make)).toString()).toBe("secret-material");
    expect((await loadOrCreateSecretFile(path, make)).toString()).toBe("secret-material");
    expect(calls).toBe(1);
  });

  it("refuses a directory in place of the file", async () => {
    await expect(loadOrCreateSecretFile(dir, () => Buffer.from("x"))).rejects.toMatchObject({ code: "GW_CONFIG" });
  });
});
