/**
 * The admin credential: a fresh random bearer token generated at every gateway start and
 * written to `<dataDir>/admin.token` (mode 0600), so only the gateway's own OS user (and root)
 * can act as admin through the API — the CLI on the gateway host reads it from there.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { GatewayError } from "../core/errors.js";
import { registerSecretValue } from "../observability/logger.js";
import { ensurePrivateDir, writeFileAtomic } from "./files.js";

export const ADMIN_TOKEN_PREFIX = "airlock_admin_";
export const ADMIN_TOKEN_FILE = "admin.token";

export function adminTokenPath(dataDir: string): string {
  return join(dataDir, ADMIN_TOKEN_FILE);
}

/**
 * Generate a new admin token (or take the one the primary of `--workers N` made for all its
 * workers), write it atomically with mode 0600, and return it.
 */
export async function writeAdminToken(dataDir: string, given?: string): Promise<string> {
  const token = given ?? newAdminToken();
  await ensurePrivateDir(dataDir);
  await writeFileAtomic(adminTokenPath(dataDir), `${token}\n`);
  registerSecretValue(token);
  return token;
}

export function newAdminToken(): string {
  return ADMIN_TOKEN_PREFIX + randomBytes(32).toString("base64url");
}

/** Read the admin token the running gateway wrote (for the CLI on the gateway host). */
export async function readAdminToken(dataDir: string): Promise<string> {
  const path = adminTokenPath(dataDir);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new GatewayError("GW_AUTH_MISSING", `cannot read the admin credential ${path} (is the gateway running here? or set AIRLOCK_TOKEN)`, {
      cause: e,
    });
  }
  const token = text.trim();
  if (!token.startsWith(ADMIN_TOKEN_PREFIX)) {
    throw new GatewayError("GW_AUTH_INVALID", `${path} does not hold an admin credential`);
  }
  registerSecretValue(token);
  return token;
}

/**
 * Timing-safe comparison. Both sides are hashed first so the comparison always runs over 32
 * bytes: neither the length of the expected token nor the position of the first difference
 * leaks through timing.
 */
export function adminTokenMatches(expected: string, presented: string): boolean {
  const a = createHash("sha256").update(expected, "utf8").digest();
  const b = createHash("sha256").update(presented, "utf8").digest();
  // An empty expected token must never match (e.g. a misconfigured server).
  return timingSafeEqual(a, b) && expected.length > 0;
}
