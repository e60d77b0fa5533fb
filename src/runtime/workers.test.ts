import { describe, expect, it } from "vitest";
import { cancelKeyDigest } from "../protocols/postgres/engine.js";
import { storeEventSchema } from "../store/events.js";
import { parseConfig } from "./config.js";
import { workerCount, workerInstanceId } from "./workers.js";

const embedded = parseConfig({ dataDir: "/tmp/x" }, "/tmp/x/airlock.yaml");
const shared = parseConfig({ dataDir: "/tmp/x", store: { url: "postgres://u:p@127.0.0.1:5432/store" } }, "/tmp/x/airlock.yaml");

describe("workerCount", () => {
  it("defaults to the cores with a PostgreSQL store and to one process with the embedded store", () => {
    expect(workerCount(shared, undefined, 8)).toBe(8);
    expect(workerCount(embedded, undefined, 8)).toBe(1);
  });

  it("takes what is asked for, and refuses more than one worker on the embedded store", () => {
    expect(workerCount(shared, 3, 8)).toBe(3);
    expect(workerCount(embedded, 1, 8)).toBe(1);
    expect(() => workerCount(embedded, 2, 8)).toThrow("--workers 2 needs the PostgreSQL store (store.url)");
    expect(() => workerCount(shared, 0, 8)).toThrow("from 1 to 256");
  });
});

describe("workerInstanceId", () => {
  it("names workers after the gateway's id, and refuses an id too long to carry the suffix", () => {
    expect(workerInstanceId("gw-a", 2)).toBe("gw-a-w2");
    expect(() => workerInstanceId("a".repeat(62), 1)).toThrow("too long");
  });
});

describe("cancels between gateways", () => {
  it("travel as a digest of the key: stable, different per key, never the key itself", () => {
    const secret = Buffer.from([1, 2, 3, 4]);
    const d = cancelKeyDigest(1234, secret);
    expect(d).toMatch(/^[0-9a-f]{32}$/);
    expect(cancelKeyDigest(1234, Buffer.from([1, 2, 3, 4]))).toBe(d);
    expect(cancelKeyDigest(1234, Buffer.from([1, 2, 3, 5]))).not.toBe(d);
    expect(cancelKeyDigest(1235, secret)).not.toBe(d);
    expect(d).not.toContain("01020304");
    expect(storeEventSchema.safeParse({ t: "cancel", from: "gw-a", id: "x", key: d }).success).toBe(true);
    expect(storeEventSchema.safeParse({ t: "cancel", from: "gw-a", id: "x", key: "1234:01020304" }).success).toBe(false);
  });
});
