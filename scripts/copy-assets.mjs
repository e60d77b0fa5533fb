#!/usr/bin/env node
// Build step after `tsc -p tsconfig.build.json`, which emits only what it compiles from .ts:
// copies the plain-JavaScript modules that compiled code loads at run time by URL (worker
// scripts such as src/store/pglite-worker.mjs, located with `new URL("./x.mjs", import.meta.url)`)
// to the same relative place under dist/, so src/ and dist/ have the same layout for them.
//
// usage: node scripts/copy-assets.mjs   (from anywhere; paths are relative to the repository).
// Silent on success, like tsc: `npm start` builds before every start.
import { copyFileSync, mkdirSync, readdirSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const src = join(root, "src");
const out = join(root, "dist", "src");

for (const entry of readdirSync(src, { recursive: true, withFileTypes: true })) {
  // Test fixtures stay out of the build, like *.test.ts.
  if (!entry.isFile() || !entry.name.endsWith(".mjs") || entry.name.includes(".test.")) continue;
  const from = join(entry.parentPath, entry.name);
  const to = join(out, relative(src, from));
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(from, to);
}
