/**
 * Secret files (the audit HMAC key; reused for other key material): created once, atomically,
 * mode 0600, and refused when other users could read them.
 *
 * Creation writes a private temp file, fsyncs it, then `link()`s it to the final name. link
 * fails with EEXIST if the name exists, so two processes starting together never overwrite each
 * other: the loser reads the winner's file. (rename would silently replace it, leaving one
 * process holding a key that is no longer on disk.)
 */
import { randomBytes } from "node:crypto";
import { link, mkdir, open, unlink, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";
import { GatewayError } from "../core/errors.js";

/** Anything beyond this is not a key file. */
const MAX_SECRET_FILE_BYTES = 64 * 1024;

function errno(e: unknown): string | undefined {
  return typeof e === "object" && e !== null && "code" in e && typeof e.code === "string" ? e.code : undefined;
}

async function readChecked(path: string): Promise<Buffer | undefined> {
  let fh: FileHandle;
  try {
    fh = await open(path, "r");
  } catch (e) {
    if (errno(e) === "ENOENT") return undefined;
    throw new GatewayError("GW_CONFIG", `cannot read secret file ${path}`, { cause: e });
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new GatewayError("GW_CONFIG", `secret file ${path} is not a regular file`);
    if ((st.mode & 0o077) !== 0) {
      const mode = (st.mode & 0o777).toString(8).padStart(3, "0");
      throw new GatewayError(
        "GW_CONFIG",
        `secret file ${path} is readable or writable by other users (mode ${mode}); run: chmod 600 ${path}`,
      );
    }
    if (st.size === 0) throw new GatewayError("GW_CONFIG", `secret file ${path} is empty; remove it to generate a new one`);
    if (st.size > MAX_SECRET_FILE_BYTES) throw new GatewayError("GW_CONFIG", `secret file ${path} is too large to be a key`);
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

/**
 * Return the contents of the secret file at `path`, creating it with `create()` (mode 0600,
 * parent directory 0700 if it has to be made) when it does not exist.
 * Throws GW_CONFIG when the file is group/world accessible, empty, or unreadable.
 */
export async function loadOrCreateSecretFile(path: string, create: () => Buffer): Promise<Buffer> {
  const existing = await readChecked(path);
  if (existing !== undefined) return existing;

  const secret = create();
  if (secret.length === 0) throw new GatewayError("GW_INTERNAL", "refusing to write an empty secret");
  try {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new GatewayError("GW_CONFIG", `cannot create the directory for ${path}`, { cause: e });
  }
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`;
  try {
    const fh = await open(tmp, "wx", 0o600);
    try {
      await fh.writeFile(secret);
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await link(tmp, path);
    } catch (e) {
      if (errno(e) !== "EEXIST") throw e;
      // Another process won the race: use its secret.
    }
  } catch (e) {
    throw new GatewayError("GW_CONFIG", `cannot create secret file ${path}`, { cause: e });
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
  const result = await readChecked(path);
  if (result === undefined) throw new GatewayError("GW_CONFIG", `secret file ${path} vanished while being created`);
  return result;
}

export const AUDIT_KEY_BYTES = 32;

/** The audit chain's HMAC key: 32 random bytes. A shorter file is refused. */
export async function loadOrCreateKey(path: string): Promise<Buffer> {
  const key = await loadOrCreateSecretFile(path, () => randomBytes(AUDIT_KEY_BYTES));
  if (key.length < AUDIT_KEY_BYTES) {
    throw new GatewayError("GW_CONFIG", `key file ${path} holds ${key.length} bytes; at least ${AUDIT_KEY_BYTES} are required`);
  }
  return key;
}
