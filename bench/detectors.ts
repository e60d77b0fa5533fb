/**
 * Detector quality benchmark (not a test): recall on generated values and false positives on
 * ordinary prose, for every content detector, written to bench/detectors-results.md.
 *
 *   npm run build && node dist/bench/detectors.js [values-per-locale]     (default 300)
 *
 * Recall: values generated with @faker-js/faker (fixed seed) in ten locales, each tested alone
 * and inside a sentence of that locale's filler words. A value counts as found when a match of
 * the detector's own kind covers it whole (for phones: from the first to the last digit of the
 * number, an extension such as " x2079" aside; for key=value secrets: the value). Values that
 * faker cannot make per locale (SSNs, keys, tokens) are generated here in their real formats.
 *
 * False positives:
 * - on the other detectors' generated values (a phone detector firing on an IBAN, …);
 * - on prose: lines of the PostgreSQL 15 manual as Debian ships it (package
 *   `postgresql-doc-15`, HTML under /usr/share/doc/postgresql-doc-15/html, tags stripped; install
 *   it with `apt-get install postgresql-doc-15`; set DETECTOR_CORPUS_PGDOC to another directory),
 *   and the README.md files of the npm packages in node_modules (always present after
 *   `npm ci`). A line counts once however many matches it holds. The first examples of each
 *   detector are listed so that a reader can judge them.
 *
 * CPU: nanoseconds per prose line through ValueMasker.maskText with all detectors (prefilter
 * included), the figure that matters on the hot path (most values are clean).
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { generateKeyPairSync } from "node:crypto";
import { join } from "node:path";
import { allFakers, type Faker } from "@faker-js/faker";
import { DETECTOR_KINDS, DEFAULT_PHONE_REGIONS, ValueMasker, detect, phoneDetectorFor, type Detector, type DetectorKind } from "../src/masking/index.js";

const PER_LOCALE = Number(process.argv[2] ?? 300);
const LOCALES = ["es", "fr", "nl", "de", "ja", "en_GB", "it", "en_US", "pt_BR", "en_IN"] as const;
type Locale = (typeof LOCALES)[number];
/** The country a policy for that locale's users would name (`phoneRegions`). */
const COUNTRY: Readonly<Record<Locale, string>> = { es: "ES", fr: "FR", nl: "NL", de: "DE", ja: "JP", en_GB: "GB", it: "IT", en_US: "US", pt_BR: "BR", en_IN: "IN" };
const OUT = new URL("../../bench/detectors-results.md", import.meta.url);

interface Sample {
  /** The value as it would sit in a field. */
  readonly value: string;
  /** The part of `value` that must be covered: [start, end). */
  readonly target: readonly [number, number];
}

const whole = (value: string): Sample => ({ value, target: [0, value.length] });

/** A phone number's digits, first to last ("(313) 761-4873 x2079" → "313) 761-4873"). */
function phoneSample(value: string): Sample {
  const core = value.replace(/\s*(?:x|ext\.?)\s*\d+$/i, "");
  const first = core.search(/\d/);
  let last = core.length;
  while (last > 0 && !/\d/.test(core[last - 1] ?? "")) last--;
  return { value, target: [first, last] };
}

const PEM_KEYS: string[] = (() => {
  const keys: string[] = [];
  for (const type of ["rsa", "ec", "ed25519"] as const) {
    const opts = type === "rsa" ? { modulusLength: 1024 } : type === "ec" ? { namedCurve: "P-256" } : {};
    const { privateKey } = generateKeyPairSync(type as "rsa", opts as { modulusLength: number });
    keys.push(privateKey.export({ type: "pkcs8", format: "pem" }).toString());
  }
  return keys;
})();

type Generator = (f: Faker) => Sample;

/** What each detector is measured on. Phones in three faker styles. */
const GENERATORS: Readonly<Record<string, { readonly kind: DetectorKind; readonly gen: Generator }>> = {
  email: { kind: "email", gen: (f) => whole(f.internet.email()) },
  credit_card: { kind: "credit_card", gen: (f) => whole(f.finance.creditCardNumber()) },
  "phone (faker default)": { kind: "phone", gen: (f) => phoneSample(f.phone.number()) },
  "phone (national)": { kind: "phone", gen: (f) => phoneSample(f.phone.number({ style: "national" })) },
  "phone (international)": { kind: "phone", gen: (f) => phoneSample(f.phone.number({ style: "international" })) },
  ssn: {
    kind: "ssn",
    gen: (f) => {
      const area = f.number.int({ min: 1, max: 899 });
      const a = area === 666 ? 667 : area;
      return whole(`${String(a).padStart(3, "0")}-${String(f.number.int({ min: 1, max: 99 })).padStart(2, "0")}-${String(f.number.int({ min: 1, max: 9999 })).padStart(4, "0")}`);
    },
  },
  iban: { kind: "iban", gen: (f) => whole(f.finance.iban({ formatted: f.datatype.boolean() })) },
  ipv4: { kind: "ipv4", gen: (f) => whole(f.internet.ipv4()) },
  aws_key: { kind: "aws_key", gen: (f) => whole(`AKIA${f.string.alphanumeric({ length: 16, casing: "upper" })}`) },
  jwt: { kind: "jwt", gen: (f) => whole(f.internet.jwt()) },
  private_key: { kind: "private_key", gen: (f) => whole(f.helpers.arrayElement(PEM_KEYS).trim()) },
  api_key: {
    kind: "api_key",
    gen: (f) =>
      whole(
        f.helpers.arrayElement([
          `ghp_${f.string.alphanumeric(36)}`,
          `sk_live_${f.string.alphanumeric(24)}`,
          `xoxb-${f.string.numeric(12)}-${f.string.alphanumeric(24)}`,
          `AIza${f.string.alphanumeric(35)}`,
          `glpat-${f.string.alphanumeric(20)}`,
          `npm_${f.string.alphanumeric(36)}`,
        ]),
      ),
  },
  secret: {
    kind: "secret",
    gen: (f) => {
      const key = f.helpers.arrayElement(["password", "DB_PASSWORD", "api_token", "client_secret", "\"secret\"", "passwd"]);
      const value = f.internet.password({ length: f.number.int({ min: 8, max: 24 }) }).replace(/[\s"'`]/g, "x");
      const sep = key.startsWith('"') ? ": " : "=";
      const quoted = key.startsWith('"') ? `"${value}"` : value;
      const text = `${key}${sep}${quoted}`;
      const start = text.lastIndexOf(value);
      return { value: text, target: [start, start + value.length] };
    },
  },
};

function covers(text: string, kind: DetectorKind, start: number, end: number, detector?: Detector): boolean {
  for (const m of detector === undefined ? detect(text, [kind]) : detector.find(text)) if (m.kind === kind && m.start <= start && m.end >= end) return true;
  return false;
}

function sentence(f: Faker, s: Sample): { text: string; start: number; end: number } {
  const before = `${f.lorem.words(3)}: `;
  const after = `, ${f.lorem.words(3)}.`;
  return { text: before + s.value + after, start: before.length + s.target[0], end: before.length + s.target[1] };
}

function pct(n: number, d: number): string {
  return d === 0 ? "–" : `${((100 * n) / d).toFixed(d >= 1000 ? 2 : 1)}%`;
}

// ---------------------------------------------------------------------------------------------
// Recall

interface RecallRow {
  readonly name: string;
  readonly alone: Record<string, [number, number]>;
  readonly inSentence: Record<string, [number, number]>;
  readonly misses: string[];
}

const samplesByGenerator = new Map<string, string[]>();
const recall: RecallRow[] = [];
function measure(name: string, kind: DetectorKind, gen: Generator, detectorFor?: (locale: Locale) => Detector): RecallRow {
  const row: RecallRow = { name, alone: {}, inSentence: {}, misses: [] };
  const all: string[] = [];
  for (const locale of LOCALES) {
    const f = allFakers[locale];
    f.seed(0x5eed + LOCALES.indexOf(locale));
    const detector = detectorFor?.(locale);
    let a = 0;
    let s = 0;
    let missed = 0;
    for (let i = 0; i < PER_LOCALE; i++) {
      const sample = gen(f);
      all.push(sample.value);
      if (covers(sample.value, kind, sample.target[0], sample.target[1], detector)) a++;
      else if (missed++ < 3) row.misses.push(`${locale}: ${sample.value.length > 60 ? `${sample.value.slice(0, 57)}…` : sample.value}`);
      const sent = sentence(f, sample);
      if (covers(sent.text, kind, sent.start, sent.end, detector)) s++;
    }
    row.alone[locale] = [a, PER_LOCALE];
    row.inSentence[locale] = [s, PER_LOCALE];
  }
  if (detectorFor === undefined) samplesByGenerator.set(name, all);
  return row;
}
for (const [name, { kind, gen }] of Object.entries(GENERATORS)) {
  recall.push(measure(name, kind, gen));
  if (kind === "phone") {
    // The same values with a policy that names the locale's country (`phoneRegions`).
    const own = new Map<Locale, Detector>(LOCALES.map((l) => [l, phoneDetectorFor([COUNTRY[l]])]));
    recall.push(measure(`${name}, policy names the country`, kind, gen, (l) => own.get(l) ?? phoneDetectorFor([COUNTRY[l]])));
  }
}

// ---------------------------------------------------------------------------------------------
// False positives on the other detectors' values

const crossFp = new Map<DetectorKind, [number, number]>();
const crossExamples = new Map<DetectorKind, string[]>();
for (const kind of DETECTOR_KINDS) {
  let hit = 0;
  let total = 0;
  for (const [name, values] of samplesByGenerator) {
    const own = GENERATORS[name]?.kind;
    // Values that legitimately hold another kind: a secret assignment may hold anything; a
    // private key's base64 body is high-entropy text (the secret family).
    if (own === kind || own === "secret" || (own === "private_key" && kind === "secret")) continue;
    if ((kind === "secret" || kind === "api_key" || kind === "aws_key") && (own === "jwt" || own === "api_key" || own === "aws_key" || own === "private_key")) continue;
    for (const v of values) {
      total++;
      if (detect(v, [kind]).length > 0) {
        hit++;
        const ex = crossExamples.get(kind) ?? [];
        if (ex.length < 5) ex.push(`${name}: ${v.slice(0, 40)}`);
        crossExamples.set(kind, ex);
      }
    }
  }
  crossFp.set(kind, [hit, total]);
}

// ---------------------------------------------------------------------------------------------
// False positives on prose

function htmlToLines(html: string): string[] {
  const text = html
    .replace(/<(script|style)[^>]*>[\s\S]*?<\/\1>/gi, "")
    // Cells, paragraphs and list items end a word: strip them to a space, other tags to nothing.
    .replace(/<\/?(?:td|th|tr|p|div|br|li|dt|dd|h\d|table|thead|tbody|pre|ul|ol|dl|a)\b[^>]*>/gi, " ")
    .replace(/<[^>]+>/g, "")
    .replace(/&nbsp;|&#160;/g, " ")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"')
    .replace(/&#(\d+);/g, (_, d: string) => String.fromCodePoint(Number(d)))
    .replace(/&#x([0-9a-f]+);/gi, (_, h: string) => String.fromCodePoint(parseInt(h, 16)))
    .replace(/&amp;/g, "&");
  return text.split("\n").map((l) => l.trim()).filter((l) => l.length > 0);
}

function pgDocLines(): { lines: string[]; source: string } | undefined {
  const dir = process.env.DETECTOR_CORPUS_PGDOC ?? "/usr/share/doc/postgresql-doc-15/html";
  if (!existsSync(dir)) return undefined;
  const lines: string[] = [];
  for (const file of readdirSync(dir).sort()) {
    if (file.endsWith(".html")) lines.push(...htmlToLines(readFileSync(join(dir, file), "utf8")));
  }
  return { lines, source: `${dir} (Debian postgresql-doc-15), ${readdirSync(dir).filter((f) => f.endsWith(".html")).length} HTML files` };
}

function readmeLines(): { lines: string[]; source: string } {
  const root = new URL("../../node_modules/", import.meta.url).pathname;
  const files: string[] = [];
  for (const name of readdirSync(root).sort()) {
    const dirs = name.startsWith("@") ? readdirSync(join(root, name)).sort().map((n) => join(root, name, n)) : [join(root, name)];
    for (const d of dirs) {
      for (const readme of ["README.md", "readme.md", "Readme.md"]) {
        const p = join(d, readme);
        if (existsSync(p)) {
          files.push(p);
          break;
        }
      }
    }
  }
  const lines = files.flatMap((p) => readFileSync(p, "utf8").split("\n").map((l) => l.trim()).filter((l) => l.length > 0));
  return { lines, source: `README.md of ${files.length} npm packages in node_modules` };
}

interface ProseResult {
  /** Every flagged line of a detector other than email (addresses in prose are real), to judge by hand. */
  readonly flagged: string[];
  readonly source: string;
  readonly lines: number;
  readonly perKind: Map<DetectorKind, { lines: number; examples: string[] }>;
  readonly any: number;
  readonly nsPerLine: number;
}

const allMasker = new ValueMasker({ detectors: [...DETECTOR_KINDS], strategy: "redact", key: Buffer.alloc(32, 1) });

function prose(corpus: { lines: string[]; source: string }): ProseResult {
  const perKind = new Map<DetectorKind, { lines: number; examples: string[] }>();
  for (const k of DETECTOR_KINDS) perKind.set(k, { lines: 0, examples: [] });
  let any = 0;
  const all: string[] = [];
  for (const line of corpus.lines) {
    let flagged = false;
    for (const k of DETECTOR_KINDS) {
      const ms = detect(line, [k]);
      if (ms.length === 0) continue;
      flagged = true;
      const e = perKind.get(k);
      if (e === undefined) continue;
      e.lines++;
      const first = ms[0];
      if (k !== "email" && first !== undefined && all.length < 400) {
        all.push(`${k}: ${line.slice(Math.max(0, first.start - 40), first.start)}⟦${line.slice(first.start, first.end)}⟧${line.slice(first.end, first.end + 40)}`);
      }
      if (e.examples.length < 6) {
        const m = ms[0];
        if (m !== undefined) {
          const from = Math.max(0, m.start - 30);
          e.examples.push(`${from > 0 ? "…" : ""}${line.slice(from, m.start)}⟦${line.slice(m.start, m.end)}⟧${line.slice(m.end, m.end + 30)}`.replace(/\|/g, "\\|"));
        }
      }
    }
    if (flagged) any++;
  }
  // CPU: every line through the masker with all detectors (the prefilter first), 3 passes, best.
  let best = Infinity;
  for (let r = 0; r < 3; r++) {
    const t0 = process.hrtime.bigint();
    for (const line of corpus.lines) allMasker.maskText(line);
    const ns = Number(process.hrtime.bigint() - t0) / corpus.lines.length;
    if (ns < best) best = ns;
  }
  return { flagged: all, source: corpus.source, lines: corpus.lines.length, perKind, any, nsPerLine: best };
}

const corpora = [pgDocLines(), readmeLines()].filter((c): c is { lines: string[]; source: string } => c !== undefined);
const proseResults = corpora.map(prose);

// ---------------------------------------------------------------------------------------------
// Report

const md: string[] = [];
md.push("# Detector recall and false positives");
md.push("");
md.push(`Generated by \`bench/detectors.ts\` (\`npm run build && node dist/bench/detectors.js ${PER_LOCALE}\`) on ${new Date().toISOString().slice(0, 10)}.`);
md.push(`${PER_LOCALE} values per locale and detector (faker seed fixed), each alone and inside a sentence;`);
md.push("found = a match of the detector's own kind covers the value (phones: first to last digit, extension aside).");
md.push(`Phones use the default regions (${DEFAULT_PHONE_REGIONS.join(", ")}) unless the row says the policy names the locale's country (${LOCALES.map((l) => `${l} ${COUNTRY[l]}`).join(", ")}).`);
md.push("");
md.push("## Recall, value alone");
md.push("");
md.push(`| detector | ${LOCALES.join(" | ")} |`);
md.push(`|---|${LOCALES.map(() => "---:").join("|")}|`);
for (const r of recall) md.push(`| ${r.name} | ${LOCALES.map((l) => pct(...(r.alone[l] ?? [0, 0]))).join(" | ")} |`);
md.push("");
md.push("## Recall, inside a sentence");
md.push("");
md.push(`| detector | ${LOCALES.join(" | ")} |`);
md.push(`|---|${LOCALES.map(() => "---:").join("|")}|`);
for (const r of recall) md.push(`| ${r.name} | ${LOCALES.map((l) => pct(...(r.inSentence[l] ?? [0, 0]))).join(" | ")} |`);
md.push("");
md.push("### Missed values (first few, value alone)");
md.push("");
for (const r of recall) if (r.misses.length > 0) md.push(`- **${r.name}**: ${r.misses.map((m) => `\`${m.replace(/\n/g, " ")}\``).join(", ")}`);
md.push("");
md.push("## False positives on the other detectors' generated values");
md.push("");
md.push("Values of every other generator (alone), except those that may legitimately hold the kind (key=value secrets; keys and tokens for the secret family).");
md.push("");
md.push("| detector | flagged | of | rate | first examples |");
md.push("|---|---:|---:|---:|---|");
for (const [k, [hit, total]] of crossFp) md.push(`| ${k} | ${hit} | ${total} | ${pct(hit, total)} | ${(crossExamples.get(k) ?? []).map((x) => `\`${x}\``).join("<br>")} |`);
md.push("");
md.push("## False positives on prose");
md.push("");
for (const p of proseResults) {
  md.push(`### ${p.source}`);
  md.push("");
  md.push(`${p.lines.toLocaleString("en")} non-empty lines; lines with anything masked by any detector: **${p.any} (${((100 * p.any) / p.lines).toFixed(3)}%)**; all detectors through ValueMasker.maskText: ${Math.round(p.nsPerLine)} ns per line.`);
  md.push("");
  md.push("| detector | lines flagged | rate | first examples (⟦match⟧) |");
  md.push("|---|---:|---:|---|");
  for (const [k, e] of p.perKind) md.push(`| ${k} | ${e.lines} | ${((100 * e.lines) / p.lines).toFixed(3)}% | ${e.examples.map((x) => `\`${x.replace(/`/g, "'")}\``).join("<br>")} |`);
  md.push("");
}
for (const p of proseResults) {
  md.push(`<details><summary>Every line flagged by a detector other than email: ${p.source} (${p.flagged.length}${p.flagged.length === 400 ? ", first 400" : ""})</summary>`);
  md.push("");
  md.push("~~~");
  for (const f of p.flagged) md.push(f.replace(/~~~/g, "~ ~ ~"));
  md.push("~~~");
  md.push("</details>");
  md.push("");
}
if (corpora.length < 2) md.push("(The PostgreSQL manual was not found: `apt-get install postgresql-doc-15`.)\n");
writeFileSync(OUT, md.join("\n"));
console.log(md.join("\n").split("<details>")[0]);
