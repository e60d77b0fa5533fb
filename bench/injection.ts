/**
 * Prompt-injection detector benchmark (not a test): recall on published injection strings and
 * false positives on ordinary data, written to bench/injection-results.md.
 *
 *   npm run build && node dist/bench/injection.js
 *
 * Recall: test/fixtures/injection/published.json (sources in its README): strings quoted from
 * papers and write-ups (`published`) and payloads built in the forms such write-ups describe
 * (`constructed`: Unicode tags, bidi, fake tool calls, base64 carriers), reported apart.
 *
 * False positives, per value:
 * - the demo data (`npm start`'s customers and orders rows, every text column);
 * - text @faker-js/faker ships (fixed seed, en/de/fr): lorem paragraphs, product descriptions,
 *   catch phrases, hacker phrases, bios, commit messages, addresses, URLs;
 * - every non-empty line of the README.md of each npm package in node_modules (real prose,
 *   Markdown and code samples written by people);
 * - the PostgreSQL 15 manual when Debian's postgresql-doc-15 is installed.
 * Flagged ordinary values are listed (first few per corpus) so a reader can judge them.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Faker, de, en, fr, base } from "@faker-js/faker";
import { luhnCard } from "../src/runtime/demo.js";
import { INJECTION_KINDS, scanInjection, type InjectionKind } from "../src/scan/injection.js";

const OUT = new URL("../../bench/injection-results.md", import.meta.url);
const FIXTURE = new URL("../../test/fixtures/injection/published.json", import.meta.url);

interface Entry {
  readonly text: string;
  readonly source: string;
  readonly kind: "published" | "constructed";
}

function demoValues(): string[] {
  const FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Dennis", "Radia", "Linus"];
  const LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton", "Ritchie", "Perlman", "Torvalds"];
  const COUNTRIES = ["GB", "US", "NL", "DE", "FR", "SE", "CA", "AU"];
  const out: string[] = [];
  // The same rows src/runtime/demo.ts seeds (customers: 200, orders: 1000).
  for (let i = 0; i < 200; i++) {
    const first = FIRST[i % FIRST.length] ?? "Ada";
    const last = LAST[(i * 7) % LAST.length] ?? "Lovelace";
    out.push(`${first} ${last}`, `${first.toLowerCase()}.${last.toLowerCase()}${i}@example.com`, `+1 415 555 ${String(1000 + i).padStart(4, "0")}`, luhnCard(i % 2 === 0 ? "4111" : "5500", i + 1), COUNTRIES[i % COUNTRIES.length] ?? "GB", new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString());
  }
  for (let g = 1; g <= 1000; g++) out.push(String(1 + (g % 200)), String(500 + ((g * 7919) % 50000)), ["paid", "shipped", "refunded", "pending"][g % 4] ?? "paid");
  return out;
}

function fakerValues(perLocale: number): string[] {
  const out: string[] = [];
  for (const [i, locale] of [en, de, fr].entries()) {
    const f = new Faker({ locale: [locale, en, base] });
    f.seed(20261207 + i);
    for (let n = 0; n < perLocale; n++) {
      out.push(
        f.lorem.paragraph(),
        f.commerce.productDescription(),
        f.company.catchPhrase(),
        f.hacker.phrase(),
        f.person.bio(),
        f.git.commitMessage(),
        f.location.streetAddress({ useFullAddress: true }),
        f.internet.url(),
        f.lorem.sentences(3),
        f.word.words(8),
        f.string.uuid(),
        f.finance.iban(),
      );
    }
  }
  return out;
}

function readmeLines(): { lines: string[]; files: number } {
  const root = new URL("../../node_modules/", import.meta.url).pathname;
  const files: string[] = [];
  for (const name of readdirSync(root).sort()) {
    if (name.startsWith(".")) continue;
    const dirs = name.startsWith("@") ? readdirSync(join(root, name)).sort().map((n) => join(root, name, n)) : [join(root, name)];
    for (const d of dirs) {
      const p = ["README.md", "readme.md", "Readme.md"].map((r) => join(d, r)).find((x) => existsSync(x));
      if (p !== undefined) files.push(p);
    }
  }
  const lines = files.flatMap((p) => readFileSync(p, "utf8").split("\n").map((l) => l.trim()).filter((l) => l.length > 0));
  return { lines, files: files.length };
}

function pgDocLines(): string[] | undefined {
  const dir = "/usr/share/doc/postgresql-doc-15/html";
  if (!existsSync(dir)) return undefined;
  return readdirSync(dir)
    .filter((f) => f.endsWith(".html"))
    .flatMap((f) => readFileSync(join(dir, f), "utf8").replace(/<[^>]*>/g, " ").split("\n"))
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
}

interface Scan {
  readonly name: string;
  readonly values: number;
  readonly flagged: { readonly text: string; readonly kinds: readonly InjectionKind[] }[];
  readonly nsPerValue: number;
}

function scan(name: string, values: readonly string[]): Scan {
  const flagged: Scan["flagged"] = [];
  const t0 = process.hrtime.bigint();
  for (const v of values) {
    const f = scanInjection(v);
    if (f !== undefined) flagged.push({ text: v, kinds: f.kinds });
  }
  const ns = Number(process.hrtime.bigint() - t0) / Math.max(1, values.length);
  return { name, values: values.length, flagged, nsPerValue: ns };
}

function pct(n: number, d: number): string {
  return d === 0 ? "n/a" : `${((100 * n) / d).toFixed(n === 0 || n === d ? 0 : 2)}%`;
}

function shown(text: string): string {
  // Invisible characters are shown as escapes; the table stays one line per example.
  const t = text.replace(/[\u{E0000}-\u{E007F}\u200B-\u200D\u2060\uFEFF\u202A-\u202E\u2066-\u2069]/gu, (c) => `\\u{${(c.codePointAt(0) ?? 0).toString(16)}}`);
  const one = t.replace(/\s+/g, " ").replace(/\|/g, "\\|").replace(/`/g, "'");
  return one.length > 160 ? `${one.slice(0, 157)}…` : one;
}

function main(): void {
  const entries = JSON.parse(readFileSync(FIXTURE, "utf8")) as Entry[];
  const lines: string[] = ["# Prompt-injection detector (src/scan/injection.ts)", "", `Run: ${new Date().toISOString()}, Node ${process.version}. Regenerate: \`npm run build && node dist/bench/injection.js\`.`, ""];
  lines.push("## Recall on injection strings", "", "| set | strings | flagged | recall |", "|---|---|---|---|");
  const missed: Entry[] = [];
  for (const kind of ["published", "constructed"] as const) {
    const set = entries.filter((e) => e.kind === kind);
    const hit = set.filter((e) => scanInjection(e.text) !== undefined);
    missed.push(...set.filter((e) => scanInjection(e.text) === undefined));
    lines.push(`| ${kind} (test/fixtures/injection/published.json) | ${set.length} | ${hit.length} | ${pct(hit.length, set.length)} |`);
  }
  const allHit = entries.filter((e) => scanInjection(e.text) !== undefined).length;
  lines.push(`| all | ${entries.length} | ${allHit} | ${pct(allHit, entries.length)} |`, "");
  if (missed.length > 0) {
    lines.push("Missed:", "");
    for (const m of missed) lines.push(`- \`${shown(m.text)}\` (${m.source})`);
    lines.push("");
  }
  const readme = readmeLines();
  const corpora: Scan[] = [scan("demo data (customers and orders, every value)", demoValues()), scan("@faker-js/faker text, en/de/fr, fixed seed", fakerValues(2000)), scan(`README.md lines of ${readme.files} npm packages in node_modules`, readme.lines)];
  const pgdoc = pgDocLines();
  if (pgdoc !== undefined) corpora.push(scan("PostgreSQL 15 manual lines (postgresql-doc-15)", pgdoc));
  lines.push("## False positives on ordinary data", "", `| corpus | values | flagged | rate | ${INJECTION_KINDS.join(" | ")} | ns/value |`, `|---|---|---|---|${INJECTION_KINDS.map(() => "---|").join("")}---|`);
  for (const c of corpora) {
    const per = INJECTION_KINDS.map((k) => String(c.flagged.filter((f) => f.kinds.includes(k)).length));
    lines.push(`| ${c.name} | ${c.values} | ${c.flagged.length} | ${pct(c.flagged.length, c.values)} | ${per.join(" | ")} | ${Math.round(c.nsPerValue)} |`);
  }
  if (pgdoc === undefined) lines.push("", "The PostgreSQL manual was not measured here (postgresql-doc-15 is not installed).");
  lines.push("", "### Flagged ordinary values (first 25 per corpus), to judge by hand", "");
  for (const c of corpora) {
    if (c.flagged.length === 0) continue;
    lines.push(`${c.name}:`, "");
    for (const f of c.flagged.slice(0, 25)) lines.push(`- [${f.kinds.join(", ")}] \`${shown(f.text)}\``);
    lines.push("");
  }
  writeFileSync(OUT, `${lines.join("\n").trimEnd()}\n`);
  process.stdout.write(`${lines.join("\n")}\n`);
}

main();
