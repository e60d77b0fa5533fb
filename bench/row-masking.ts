/**
 * Microbenchmark (not a test): DataRows per second through the gateway's row rewriter
 * (`rewriteDataRow`, src/protocols/postgres/result-masking.ts) with the demo mask rule, for the
 * rows of `npm run bench`'s streaming workload (an integer, an email column, a card number found
 * by content, a free-text note) and for rows with nothing to mask, next to a baseline that only
 * walks each row. Every card number is distinct and Luhn-valid, every email distinct, so no
 * cache of repeated values could flatter the figure.
 *
 *   npm run build && node dist/bench/row-masking.js [rows]
 *
 * Reports CPU ns per row (median of 5 runs after a warm-up) and checks the output once (masked
 * values present, originals absent), so a broken rewriter cannot look fast.
 */
import type { MaskRule } from "../src/core/decision.js";
import { planFields, rewriteDataRow, type ResolvedField } from "../src/protocols/postgres/result-masking.js";
import { encodeDataRow, forEachDataRowValue } from "../src/protocols/postgres/wire/index.js";
import { createMaskerFactory } from "../src/runtime/maskers.js";

const total = Number(process.argv[2] ?? 200_000);

function luhn(body: string): string {
  let sum = 0;
  let dbl = true;
  for (let i = body.length - 1; i >= 0; i--) {
    let d = body.charCodeAt(i) - 48;
    if (dbl) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    dbl = !dbl;
  }
  return body + String((10 - (sum % 10)) % 10);
}

const rule: MaskRule = {
  rule: "hide-pii",
  columns: ["*.email", "*.card_number", "*.phone"],
  detectors: ["email", "credit_card", "phone", "ssn", "secret"],
  strategy: "redact",
};
const maskerFor = createMaskerFactory(Buffer.alloc(32, 7));
/** The stream's result: `select g, … as email, '4111 …' as card, 'note for customer ' || g as note`. */
const streamFields: ResolvedField[] = [
  { name: "g", typeOid: 23, format: 0 },
  { name: "email", typeOid: 25, format: 0 },
  { name: "card", typeOid: 25, format: 0 },
  { name: "note", typeOid: 25, format: 0 },
];
/** A clean table: ids, names, timestamps, amounts, short text. */
const cleanFields: ResolvedField[] = [
  { name: "id", typeOid: 23, format: 0 },
  { name: "name", typeOid: 25, format: 0 },
  { name: "created_at", typeOid: 1184, format: 0 },
  { name: "status", typeOid: 25, format: 0 },
  { name: "comment", typeOid: 25, format: 0 },
];

/** Typed rows: a text[] holding an address, an anonymous record, a numeric amount (scanned as text). */
const typedFields: ResolvedField[] = [
  { name: "id", typeOid: 23, format: 0 },
  { name: "tags", typeOid: 1009, format: 0 },
  { name: "r", typeOid: 2249, format: 0 },
  { name: "amount", typeOid: 1700, format: 0 },
];

const b = (s: string): Buffer => Buffer.from(s, "utf8");
function makeRows(kind: "stream" | "clean" | "typed"): Buffer[] {
  const rows: Buffer[] = [];
  for (let g = 1; g <= total; g++) {
    const values =
      kind === "typed"
        ? [b(String(g)), b(`{user${g}@example.com,vip,"gold tier"}`), b(`(${g},"customer ${g}")`), b(`${g}.50`)]
        : kind === "stream"
        ? [b(String(g)), b(`user${g}@example.com`), b(luhn(`4${String(1e13 + g * 7919).slice(0, 14)}`).replace(/(\d{4})(?=\d)/g, "$1 ")), b(`note for customer ${g}`)]
        : [b(String(g)), b(`customer ${g % 977}`), b("2024-05-17 10:31:07.123+00"), b(g % 3 === 0 ? "shipped" : "pending"), b(`order ${g} left the warehouse on time`)];
    const row = encodeDataRow(values);
    rows.push(row.subarray(5)); // the body, as the session hands it over
  }
  return rows;
}

function time(run: () => number): number {
  run();
  const ns: number[] = [];
  for (let r = 0; r < 5; r++) {
    // CPU time, not wall time: the figure stays meaningful on a machine busy with other work.
    const start = process.cpuUsage();
    const sink = run();
    const used = process.cpuUsage(start);
    ns.push(((used.user + used.system) * 1000) / total);
    if (sink < 0) console.log(sink);
  }
  return ns.sort((a, z) => a - z)[2] ?? 0;
}

for (const [name, fields] of [
  ["stream rows (email, card, note)", streamFields],
  ["clean rows (5 columns, nothing to mask)", cleanFields],
  ["typed rows (text[], record, numeric)", typedFields],
] as const) {
  const rows = makeRows(name.startsWith("stream") ? "stream" : name.startsWith("typed") ? "typed" : "clean");
  const actions = planFields(fields, [rule], maskerFor);
  const counts: Record<string, number> = {};
  // Correctness once: masked labels present, originals gone.
  if (name.startsWith("stream")) {
    const first = rows[0];
    const out = first === undefined ? undefined : rewriteDataRow(first, actions, counts)?.toString("latin1");
    if (out === undefined || !out.includes("[EMAIL]") || !out.includes("[CREDIT_CARD]") || out.includes("@example.com")) {
      throw new Error(`row masking is not masking: ${String(out)}`);
    }
  }
  const base = time(() => {
    let s = 0;
    for (const row of rows) s += forEachDataRowValue(row, (_i, start, len) => (s += start + len));
    return s;
  });
  const masked = time(() => {
    let s = 0;
    for (const row of rows) s += rewriteDataRow(row, actions, counts)?.length ?? 1;
    return s;
  });
  console.log(`${name.padEnd(42)} walk only ${base.toFixed(0).padStart(6)} ns/row   rewrite ${masked.toFixed(0).padStart(6)} ns/row`);
}
