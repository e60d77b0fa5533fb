/**
 * Microbenchmark for the masking library (not a test): values/second through
 * ValueMasker.maskBytes / maskText for clean values, dirty values and a customer-table mix,
 * next to a baseline loop that only touches each value.
 *
 *   npx tsc -p tsconfig.build.json && node dist/bench/masking.js [values]
 *
 * The values are generated deterministically (fixed-seed PRNG) so runs compare. "clean" is what
 * most result columns hold (ids, names, amounts, timestamps, UUIDs, short text); "dirty" values
 * each contain something to mask; "rows" cycles through the six columns of a demo customers row
 * (id, name, email, card, phone, created_at), half of them sensitive.
 */
import { ValueMasker, type DetectorName, type MaskStrategy } from "../src/masking/index.js";

const total = Number(process.argv[2] ?? 1_000_000);

let seed = 0x2545f491;
function rand(n: number): number {
  // xorshift32: deterministic and cheap
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) % n;
}
const pick = <T>(xs: readonly T[]): T => xs[rand(xs.length)]!;
const digits = (n: number): string => Array.from({ length: n }, () => String(rand(10))).join("");
const names = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"];
const words = ["shipped", "via", "ground", "pending", "refund", "widget", "pro", "blue", "large", "gift", "order", "note"];

function luhn(body: string): string {
  let sum = 0;
  let dbl = true;
  for (let i = body.length - 1; i >= 0; i--) {
    let d = Number(body[i]);
    if (dbl) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    dbl = !dbl;
  }
  return body + String((10 - (sum % 10)) % 10);
}

const clean = (): string => {
  switch (rand(8)) {
    case 0: return String(rand(10_000_000));
    case 1: return `${pick(names)} ${pick(names)}`;
    case 2: return `2024-${String(1 + rand(12)).padStart(2, "0")}-${String(1 + rand(28)).padStart(2, "0")} ${String(rand(24)).padStart(2, "0")}:${String(rand(60)).padStart(2, "0")}:00.${digits(3)}+00`;
    case 3: return `${rand(1000)}.${digits(2)}`;
    case 4: return `${digits(8)}-${digits(4)}-4${digits(3)}-a${digits(3)}-${digits(12)}`.replace(/[0-9]/g, (d) => "0123456789abcdef"[Number(d) + rand(6)]!);
    case 5: return `${pick(words)} ${pick(words)} ${pick(words)} ${pick(words)}`;
    case 6: return rand(2) === 0 ? "t" : "f";
    default: return `SKU-${digits(6)}`;
  }
};
const email = (): string => `${pick(names)}.${pick(names)}${rand(100)}@example.${pick(["com", "org", "net"])}`;
const card = (): string => luhn(`4${digits(14)}`).replace(/(\d{4})(?=\d)/g, "$1 ");
const phone = (): string => `+1 (${2 + rand(8)}${digits(2)}) ${2 + rand(8)}${digits(2)}-${digits(4)}`;
const dirty = (): string => {
  switch (rand(5)) {
    case 0: return email();
    case 1: return card();
    case 2: return phone();
    case 3: return `${1 + rand(899)}`.padStart(3, "0").replace(/^666$/, "667") + `-${String(1 + rand(99)).padStart(2, "0")}-${String(1 + rand(9999)).padStart(4, "0")}`;
    default: return `{"user":"${pick(names)}","password":"${digits(6)}${pick(words)}","note":"${pick(words)}"}`;
  }
};
const rowColumn = (i: number): string => {
  switch (i % 6) {
    case 0: return String(i);
    case 1: return `${pick(names)} ${pick(names)}`;
    case 2: return email();
    case 3: return card();
    case 4: return phone();
    default: return clean();
  }
};

function makeSet(gen: (i: number) => string): { strings: string[]; buffers: Buffer[]; bytes: number } {
  const strings: string[] = [];
  for (let i = 0; i < total; i++) strings.push(gen(i));
  const buffers = strings.map((s) => Buffer.from(s, "utf8"));
  return { strings, buffers, bytes: buffers.reduce((a, b) => a + b.length, 0) };
}

const sets = {
  clean: makeSet(clean),
  dirty: makeSet(dirty),
  rows: makeSet(rowColumn),
};

function time(run: () => number): number {
  run(); // warm-up
  const secs: number[] = [];
  for (let r = 0; r < 3; r++) {
    const start = process.hrtime.bigint();
    const sink = run();
    secs.push(Number(process.hrtime.bigint() - start) / 1e9);
    if (sink < 0) console.log(sink); // keep the work observable
  }
  return secs.sort((a, b) => a - b)[1]!;
}

const fmt = (n: number): string => Math.round(n).toLocaleString("en-US");
const KEY = Buffer.alloc(32, 7);
const DEMO: DetectorName[] = ["email", "credit_card", "phone", "ssn", "secret"];
const ALL: DetectorName[] = ["email", "credit_card", "phone", "ssn", "iban", "ipv4", "secret"];

console.log(`${fmt(total)} values per set; median of 3 runs after a warm-up`);
for (const [name, set] of Object.entries(sets)) {
  console.log(`\n${name}: ${(set.bytes / 1048576).toFixed(1)} MiB, avg ${(set.bytes / total).toFixed(1)} B/value`);
  const base = time(() => {
    let s = 0;
    for (const b of set.buffers) s += b.length + (b[0] ?? 0);
    return s;
  });
  console.log(`  ${"baseline (touch each value)".padEnd(44)} ${fmt(total / base).padStart(13)} values/s`);
  const cases: [string, DetectorName[], MaskStrategy, "bytes" | "text"][] = [
    ["maskBytes demo detectors, redact", DEMO, "redact", "bytes"],
    ["maskBytes demo detectors, hash", DEMO, "hash", "bytes"],
    ["maskBytes all detectors, partial", ALL, "partial", "bytes"],
    ["maskText demo detectors, redact", DEMO, "redact", "text"],
  ];
  for (const [label, detectors, strategy, path] of cases) {
    const m = new ValueMasker({ detectors, strategy, key: KEY });
    let rewritten = 0;
    const secs = time(() => {
      let s = 0;
      rewritten = 0;
      if (path === "bytes") {
        for (const b of set.buffers) {
          const out = m.maskBytes(b);
          if (out !== undefined) {
            rewritten++;
            s += out === null ? 1 : out.length;
          }
        }
      } else {
        for (const t of set.strings) {
          const out = m.maskText(t);
          if (out !== undefined) {
            rewritten++;
            s += out.value === null ? 1 : out.value.length;
          }
        }
      }
      return s;
    });
    console.log(
      `  ${label.padEnd(44)} ${fmt(total / secs).padStart(13)} values/s  ${(set.bytes / 1048576 / secs).toFixed(0).padStart(4)} MiB/s  ` +
        `(${((100 * rewritten) / total).toFixed(0)}% rewritten)`,
    );
  }
}
