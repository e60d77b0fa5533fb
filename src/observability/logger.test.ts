import { afterEach, describe, expect, it } from "vitest";
import type { DestinationStream } from "pino";
import {
  MIN_SCRUB_LENGTH,
  REDACTED,
  clearRegisteredSecretsForTesting,
  createLogger,
  registerSecretValue,
  scrubSecrets,
} from "./logger.js";

function capture(): { stream: DestinationStream; lines: string[]; text: () => string } {
  const lines: string[] = [];
  return {
    stream: {
      write(msg: string) {
        lines.push(msg);
      },
    },
    lines,
    text: () => lines.join(""),
  };
}

afterEach(() => {
  clearRegisteredSecretsForTesting();
});

describe("createLogger redaction", () => {
  it("censors credential-bearing field names at the top level and nested", () => {
    const out = capture();
    const log = createLogger({ level: "info", destination: out.stream });
    log.info(
      {
        password: "pw-top-level-1",
        token: "tok-top-level-2",
        conn: { password: "pw-nested-3", user: "app" },
        deep: { inner: { secret: "sec-deep-4" } },
        req: { headers: { authorization: "Bearer abcdefgh-5", host: "x" } },
      },
      "hello",
    );
    const text = out.text();
    for (const leaked of ["pw-top-level-1", "tok-top-level-2", "pw-nested-3", "sec-deep-4", "abcdefgh-5"]) {
      expect(text).not.toContain(leaked);
    }
    const line = JSON.parse(out.lines[0]!) as Record<string, unknown>;
    expect(line["password"]).toBe(REDACTED);
    expect((line["conn"] as Record<string, unknown>)["user"]).toBe("app");
    expect((line["conn"] as Record<string, unknown>)["password"]).toBe(REDACTED);
  });
});

describe("value scrubber", () => {
  it("removes a registered canary from unexpected fields, the message and error text", () => {
    const canary = "canary-Secret-9f8e7d";
    registerSecretValue(canary);
    const out = capture();
    const log = createLogger({ level: "debug", destination: out.stream });
    log.info({ harmless: { very: { deep: { field: `prefix ${canary} suffix` } } }, list: [canary] }, `message with ${canary}`);
    log.error({ err: new Error(`connect failed for postgres://app:${canary}@db/x`) }, "boom");
    log.debug(`url form ${encodeURIComponent(canary)}`);
    const text = out.text();
    expect(out.lines.length).toBe(3);
    expect(text).not.toContain(canary);
    expect(text).toContain(REDACTED);
    // Lines stay valid JSON after scrubbing.
    for (const l of out.lines) expect(() => JSON.parse(l) as unknown).not.toThrow();
  });

  it("scrubs values that need JSON escaping", () => {
    const tricky = 'p"a\\ss\nword';
    registerSecretValue(tricky);
    const out = capture();
    createLogger({ level: "info", destination: out.stream }).info({ odd: tricky }, "x");
    expect(out.text()).not.toContain(JSON.stringify(tricky).slice(1, -1));
    const parsed = JSON.parse(out.lines[0]!) as Record<string, unknown>;
    expect(parsed["odd"]).toBe(REDACTED);
  });

  it("ignores values shorter than the minimum and keeps other text intact", () => {
    const short = "a".repeat(MIN_SCRUB_LENGTH - 1);
    registerSecretValue(short);
    expect(scrubSecrets(`x ${short} y`)).toBe(`x ${short} y`);
    registerSecretValue("longer-secret");
    expect(scrubSecrets("a longer-secret b longer-secret")).toBe(`a ${REDACTED} b ${REDACTED}`);
  });

  it("removes unregistered JWTs and admin credentials by their shape", () => {
    const out = capture();
    const jwt = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJzYTpjaS1ib3QifQ.c2lnbmF0dXJlLWJ5dGVz";
    const admin = "airlock_admin_0123456789abcdefABCDEF_-xyz";
    createLogger({ level: "info", destination: out.stream }).info({ startup: { options: `password=${jwt}` }, note: admin }, `saw ${jwt}`);
    expect(out.text()).not.toContain("eyJzdWIiOiJzYTpjaS1ib3QifQ");
    expect(out.text()).not.toContain(admin);
    expect(scrubSecrets("plain eyJ text stays")).toBe("plain eyJ text stays");
  });

  it("replaces a secret that contains another registered secret whole", () => {
    registerSecretValue("inner-secret");
    registerSecretValue("outer-inner-secret-x");
    expect(scrubSecrets("v=outer-inner-secret-x")).toBe(`v=${REDACTED}`);
  });
});
