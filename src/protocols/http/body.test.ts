import { describe, expect, it } from "vitest";
import { SCRUBBED, SecretScrubber } from "./body.js";

function feed(s: SecretScrubber, chunk: string): string {
  let out = "";
  const onData = (b: Buffer): void => void (out += b.toString("latin1"));
  s.on("data", onData);
  s.write(Buffer.from(chunk, "latin1"));
  s.off("data", onData);
  return out;
}

describe("SecretScrubber", () => {
  it("lets a streamed line through at once when its end cannot begin a secret", () => {
    const s = new SecretScrubber(["cluster-token-0123456789"]);
    expect(feed(s, '{"type":"ADDED","object":{}}\n')).toBe('{"type":"ADDED","object":{}}\n');
  });

  it("still scrubs a secret split across chunks (its beginning is held)", () => {
    const s = new SecretScrubber(["cluster-token-0123456789"]);
    const a = feed(s, "value: cluster-tok");
    expect(a).toBe("value: ");
    const b = feed(s, "en-0123456789 end\n");
    expect(a + b).toBe(`value: ${SCRUBBED} end\n`);
  });
});
