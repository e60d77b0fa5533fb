#!/usr/bin/env node
// The `airlock` command: runs the compiled CLI (npm start / npm run build compile it to dist/).
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const here = dirname(fileURLToPath(import.meta.url));
const entry = join(here, "..", "dist", "src", "cli", "main.js");
if (!existsSync(entry)) {
  process.stderr.write("airlock: not built yet; run `npm run build` (or `npm start`) first\n");
  process.exit(1);
}
await import(entry);
