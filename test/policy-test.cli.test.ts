/**
 * `airlock policy test` as a user runs it in CI: the compiled CLI (bin/airlock.js; `npm run
 * build` first) on the README's worked example, a configuration with a connection of every kind
 * and one case per kind (SQL, SSH command line and typed line, Redis, HTTP, Kubernetes by verb,
 * by raw path and exec, MCP). Then the README's failing case: exit 1 and the FAIL line it shows.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const repo = resolve(import.meta.dirname, "..");
let dir = "";
let readme = "";

/** The README's YAML block whose first line is `# NAME`. */
function readmeBlock(name: string): string {
  const m = new RegExp("```yaml\\n# " + name.replace(/\./g, "\\.") + "\\n([\\s\\S]*?)```").exec(readme);
  if (m?.[1] === undefined) throw new Error(`README has no yaml block for ${name}`);
  return m[1];
}

/** The README's text block that follows `marker`. */
function readmeText(marker: string): string {
  const at = readme.indexOf(marker);
  const m = /```\n([\s\S]*?)```/.exec(readme.slice(at));
  if (at < 0 || m?.[1] === undefined) throw new Error(`README has no text block after ${marker}`);
  return m[1];
}

async function airlock(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = spawn(process.execPath, [join(repo, "bin", "airlock.js"), ...args], { cwd: dir, env: { PATH: process.env.PATH ?? "" } });
  let stdout = "";
  let stderr = "";
  p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((done) => p.on("close", done));
  return { code, stdout, stderr };
}

beforeAll(() => {
  readme = readFileSync(join(repo, "README.md"), "utf8");
  readme = readme.slice(readme.indexOf("`airlock policy test FILE"));
  dir = mkdtempSync(join(tmpdir(), "airlock-policy-cli-"));
  writeFileSync(join(dir, "airlock.yaml"), readmeBlock("airlock.yaml"));
  writeFileSync(join(dir, "policy-tests.yaml"), readmeBlock("policy-tests.yaml"));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("airlock policy test (bin/airlock.js, the README's example)", () => {
  it("passes every case of every kind and exits 0", async () => {
    const r = await airlock(["policy", "test", "policy-tests.yaml"]);
    expect(r.stderr).toBe("");
    const lines = r.stdout.trim().split("\n");
    expect(lines.filter((l) => l.startsWith("ok    ")).length).toBe(11);
    for (const kind of ["SQL", "SSH", "Redis", "HTTP", "Kubernetes", "MCP"]) expect(r.stdout).toContain(`ok    ${kind} — `);
    expect(lines.at(-1)).toBe("11 passed, 0 failed");
    // The README shows this output (its middle elided).
    const shown = readmeText("$ airlock policy test policy-tests.yaml").split("\n").filter((l) => l.startsWith("ok") || l.includes("passed"));
    for (const l of shown) expect(r.stdout).toContain(l.replace(/^\$ .*/, ""));
    expect(r.code).toBe(0);
  });

  it("a case that does not hold: exit 1 and the FAIL line the README shows", async () => {
    writeFileSync(
      join(dir, "failing.yaml"),
      `${readmeBlock("policy-tests.yaml")}  - name: MCP — a small transfer is held
    principal: ci-bot
    connection: bank
    mcp: { tool: transfer, arguments: { amount: 5 } }
    expect: require_approval
    rule: big-transfers
`,
    );
    const r = await airlock(["policy", "test", "failing.yaml"]);
    expect(r.code).toBe(1);
    const shown = readmeText("message, and the command exits 1:");
    expect(r.stdout.endsWith(shown)).toBe(true);
    const json = await airlock(["policy", "test", "failing.yaml", "--json"]);
    expect(json.code).toBe(1);
    const body = JSON.parse(json.stdout) as { passed: number; failed: number; cases: { name: string; ok: boolean; got: string }[] };
    expect(body).toMatchObject({ passed: 11, failed: 1 });
    expect(body.cases.find((c) => !c.ok)).toMatchObject({ name: "MCP — a small transfer is held", got: "allow" });
  });

  it("a malformed case file: exit 2 and one line on stderr", async () => {
    writeFileSync(join(dir, "bad.yaml"), "config: ./airlock.yaml\ncases:\n  - { name: two kinds, principal: ci-bot, connection: api, redis: GET x, http: { path: / }, expect: allow }\n");
    const r = await airlock(["policy", "test", "bad.yaml"]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^airlock: invalid policy test file .*give exactly one of statement, input, redis, http, kubernetes, mcp\n$/);
  });
});
