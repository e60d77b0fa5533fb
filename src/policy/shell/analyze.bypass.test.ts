import { describe, expect, it } from "vitest";
import { analyzeShell } from "./analyze.js";
import { BYPASS_DENIED_PROGRAMS, SHELL_BYPASS_CASES } from "./bypass-cases.js";

/** What the guard concludes for the bypass policy: a denied program found, or unknowable. */
async function verdict(command: string): Promise<"deny" | "allow"> {
  const a = await analyzeShell(command);
  if (!a.ok) return "deny";
  if (a.unknowable.length > 0) return "deny";
  return a.commands.some((c) => BYPASS_DENIED_PROGRAMS.includes(c.name.toLowerCase())) ? "deny" : "allow";
}

describe("shell bypass regression list", () => {
  for (const c of SHELL_BYPASS_CASES) {
    it(`${c.expect}: ${JSON.stringify(c.command)}${c.note === undefined ? "" : ` (${c.note})`}`, async () => {
      expect(await verdict(c.command)).toBe(c.expect);
    });
  }
});
