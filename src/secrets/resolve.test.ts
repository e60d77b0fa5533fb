import { mkdtemp, rm, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GatewayError } from "../core/errors.js";
import { scrubSecrets, REDACTED } from "../observability/logger.js";
import { MAX_SECRET_FILE_BYTES, resolveSecret } from "./resolve.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "airlock-secrets-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function rejection(p: Promise<unknown>): Promise<GatewayError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof GatewayError) return e;
    throw e;
  }
  throw new Error("expected a rejection");
}

describe("resolveSecret", () => {
  it("returns literals and registers them with the log scrubber", async () => {
    const v = "literal-value-1234";
    expect(await resolveSecret({ kind: "literal", value: v })).toBe(v);
    expect(scrubSecrets(`x ${v}`)).toBe(`x ${REDACTED}`);
  });

  it("reads env variables; a missing one names the reference only", async () => {
    process.env["AIRLOCK_TEST_SECRET_A"] = "env-secret-value-77";
    try {
      expect(await resolveSecret({ kind: "env", name: "AIRLOCK_TEST_SECRET_A" })).toBe("env-secret-value-77");
      expect(scrubSecrets("env-secret-value-77")).toBe(REDACTED);
    } finally {
      delete process.env["AIRLOCK_TEST_SECRET_A"];
    }
    const e = await rejection(resolveSecret({ kind: "env", name: "AIRLOCK_TEST_SECRET_MISSING" }));
    expect(e.code).toBe("GW_SECRET_UNRESOLVED");
    expect(e.message).toContain("env:AIRLOCK_TEST_SECRET_MISSING");
  });

  it("strips exactly one trailing newline from files", async () => {
    const one = join(dir, "one");
    await writeFile(one, "file-secret-1\n");
    expect(await resolveSecret({ kind: "file", path: one })).toBe("file-secret-1");
    const two = join(dir, "two");
    await writeFile(two, "line1\nline2\n\n");
    expect(await resolveSecret({ kind: "file", path: two })).toBe("line1\nline2\n");
    const crlf = join(dir, "crlf");
    await writeFile(crlf, "windows-secret\r\n");
    expect(await resolveSecret({ kind: "file", path: crlf })).toBe("windows-secret");
    const none = join(dir, "none");
    await writeFile(none, "no-newline");
    expect(await resolveSecret({ kind: "file", path: none })).toBe("no-newline");
  });

  it("refuses files larger than 64 KiB, missing files and directories without echoing content", async () => {
    const big = join(dir, "big");
    await writeFile(big, "S".repeat(MAX_SECRET_FILE_BYTES + 1));
    const e1 = await rejection(resolveSecret({ kind: "file", path: big }));
    expect(e1.code).toBe("GW_SECRET_UNRESOLVED");
    expect(e1.message).toContain(`file:${big}`);
    expect(e1.message).not.toContain("SSSS");

    const exact = join(dir, "exact");
    await writeFile(exact, "E".repeat(MAX_SECRET_FILE_BYTES));
    expect((await resolveSecret({ kind: "file", path: exact })).length).toBe(MAX_SECRET_FILE_BYTES);

    const e2 = await rejection(resolveSecret({ kind: "file", path: join(dir, "absent") }));
    expect(e2.code).toBe("GW_SECRET_UNRESOLVED");
    expect(e2.message).toContain("ENOENT");

    const sub = join(dir, "subdir");
    await mkdir(sub);
    const e3 = await rejection(resolveSecret({ kind: "file", path: sub }));
    expect(e3.code).toBe("GW_SECRET_UNRESOLVED");
  });
});
