import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { playCast } from "../cli/replay.js";
import { AsciicastWriter, parseCast, readCast } from "./asciicast.js";

const dir = mkdtempSync(join(tmpdir(), "airlock-cast-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("asciicast v2", () => {
  it("writes a header and o/i/r/m events that parse and replay", async () => {
    const path = join(dir, "a", "s.cast");
    const w = new AsciicastWriter(path);
    w.output(Buffer.from("dropped before start"));
    w.start({ width: 100, height: 30, env: { TERM: "xterm" } });
    w.input(Buffer.from("ls\r"));
    w.output(Buffer.from([0xc3]));
    w.output(Buffer.from([0xa9, 0x0a])); // é split across writes
    w.resize(120, 40);
    w.marker("refused: x");
    await w.close();
    const text = readFileSync(path, "utf8");
    const { header, events } = parseCast(text);
    expect(header).toEqual({ width: 100, height: 30 });
    expect(events.map((e) => [e[1], e[2]])).toEqual([["i", "ls\r"], ["o", "é\n"], ["r", "120x40"], ["m", "refused: x"]]);
    expect(JSON.parse(text.split("\n")[0] ?? "")).toMatchObject({ version: 2, env: { TERM: "xterm" } });
    const written: string[] = [];
    const shown = await playCast(text, 0, { write: (s) => written.push(s), sleep: () => Promise.resolve() });
    expect(shown).toBe(2);
    expect(written.join("")).toContain("é\n");
    expect(await readCast(join(dir, "none.cast"))).toBeUndefined();
  });

  it("stops at its size cap with one marker", async () => {
    const path = join(dir, "cap.cast");
    const w = new AsciicastWriter(path, 300);
    w.start({ width: 80, height: 24 });
    for (let i = 0; i < 50; i++) w.output(Buffer.from("0123456789"));
    await w.close();
    const { events } = parseCast(readFileSync(path, "utf8"));
    expect(events.at(-1)?.[1]).toBe("m");
    expect(readFileSync(path).length).toBeLessThan(500);
  });
});
