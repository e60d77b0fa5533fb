#!/usr/bin/env node
// Prints the one line CI reads, `N passed, N failed[, N skipped]`, as the LAST line of the run,
// and sets the exit code. Counts come from vitest's JSON reporter file, never from vitest's
// own console summary (its wording and colours change between versions).
//
// usage: node scripts/summarize-vitest.mjs RESULTS.json [--vitest-exit CODE] [--failed-stage NAME]...
//
// Counting rules (each makes a broken run impossible to mistake for a green one):
// - every test case counts once by its status: passed | failed | skipped/pending/todo;
// - a test FILE that failed without any failing test case (import error, failing beforeAll,
//   syntax error) counts as 1 failed: its tests never ran, so nothing else would count it;
// - vitest exiting non-zero while no failure was counted (unhandled errors/rejections, which
//   the JSON file does not record) counts as 1 failed;
// - each --failed-stage (typecheck, lint, system deps…) counts as 1 failed;
// - a run in which no test passed or failed (0 tests: wrong include globs, everything skipped)
//   is itself a failure: printed as 1 failed, exit 1;
// - a missing or unreadable results file (vitest crashed before writing it) prints
//   `0 passed, 1 failed` (plus 1 per failed stage) and exits 1.
// Exit status: 0 only when failed == 0 and at least one test passed.
import { readFileSync } from "node:fs";
import { relative } from "node:path";
import process from "node:process";

function parseArgs(argv) {
  const out = { file: undefined, vitestExit: 0, failedStages: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--vitest-exit") {
      const v = Number(argv[++i]);
      out.vitestExit = Number.isInteger(v) ? v : 1;
    } else if (a === "--failed-stage") {
      const name = argv[++i];
      if (name !== undefined && name !== "") out.failedStages.push(name);
    } else if (out.file === undefined) {
      out.file = a;
    } else {
      throw new Error(`unexpected argument: ${a}`);
    }
  }
  return out;
}

function finish(passed, failed, skipped) {
  const line = `${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ""}`;
  process.stdout.write(`${line}\n`);
  process.exitCode = failed === 0 && passed > 0 ? 0 : 1;
}

function note(text) {
  process.stdout.write(`summary: ${text}\n`);
}

let args;
try {
  args = parseArgs(process.argv.slice(2));
} catch (e) {
  note(e instanceof Error ? e.message : String(e));
  finish(0, 1, 0);
  process.exit();
}

let report;
try {
  if (args.file === undefined) throw new Error("no results file given");
  report = JSON.parse(readFileSync(args.file, "utf8"));
  if (report === null || typeof report !== "object" || !Array.isArray(report.testResults)) {
    throw new Error("not a vitest JSON report (no testResults array)");
  }
} catch (e) {
  note(`no usable vitest results (${e instanceof Error ? e.message : String(e)}): vitest crashed before reporting?`);
  for (const stage of args.failedStages) note(`stage failed: ${stage}`);
  finish(0, 1 + args.failedStages.length, 0);
  process.exit();
}

let passed = 0;
let failed = 0;
let skipped = 0;
const failures = [];

for (const file of report.testResults) {
  const name = typeof file?.name === "string" ? relative(process.cwd(), file.name) : "(unnamed file)";
  const cases = Array.isArray(file?.assertionResults) ? file.assertionResults : [];
  let failedHere = 0;
  for (const c of cases) {
    const status = c?.status;
    if (status === "passed") passed++;
    else if (status === "failed") {
      failed++;
      failedHere++;
      failures.push(`${name}: ${typeof c.fullName === "string" ? c.fullName : "(unnamed test)"}`);
    } else if (status === "skipped" || status === "pending" || status === "todo" || status === "disabled") {
      skipped++;
    } else {
      // An unknown status is not a pass.
      failed++;
      failedHere++;
      failures.push(`${name}: ${String(c?.fullName)} (status ${String(status)})`);
    }
  }
  if (file?.status === "failed" && failedHere === 0) {
    failed++;
    const msg = typeof file.message === "string" && file.message !== "" ? file.message.split("\n")[0] : "file failed";
    failures.push(`${name}: ${msg}`);
  }
}

if (failed === 0 && (args.vitestExit !== 0 || report.success === false)) {
  failed++;
  failures.push(`vitest exited ${args.vitestExit} without a failing test (unhandled errors? see the log above)`);
}

for (const stage of args.failedStages) {
  failed++;
  failures.push(`stage failed: ${stage}`);
}

if (passed === 0 && failed === 0) {
  note("no test ran: a run with zero tests is a failure");
  failed = 1;
}

if (failures.length > 0) {
  note(`${failures.length} failure(s):`);
  for (const f of failures.slice(0, 50)) process.stdout.write(`  FAIL ${f}\n`);
  if (failures.length > 50) process.stdout.write(`  … and ${failures.length - 50} more\n`);
}
finish(passed, failed, skipped);
