/**
 * The gateway's own version (package.json `version`), for what it reports about itself: OCSF
 * `metadata.product.version`, OTLP `service.version`. Found by walking up from this module, so
 * it is the same from src/ (tests) and dist/src/ (the built package).
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

function find(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name?: unknown; version?: unknown };
      if (pkg.name === "airlock-gateway" && typeof pkg.version === "string") return pkg.version;
    } catch {
      // not here: one level up
    }
    dir = dirname(dir);
  }
  return "0.0.0";
}

export const GATEWAY_VERSION: string = find();
