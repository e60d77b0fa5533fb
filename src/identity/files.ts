/** Small helpers for credential files under dataDir: private modes and atomic writes. */
import { randomBytes } from "node:crypto";
import { chmod, link, mkdir, open, rename, rm } from "node:fs/promises";
import { dirname, join, basename } from "node:path";

/** Create `dir` (and parents) with mode 0700 when missing; an existing directory is kept as is. */
export async function ensurePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
}

async function writeTemp(path: string, content: string): Promise<string> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  // `wx`: never follow or reuse an existing file; mode 0600 from the first byte on.
  const handle = await open(tmp, "wx", 0o600);
  try {
    await handle.writeFile(content, "utf8");
    await handle.sync();
  } finally {
    await handle.close();
  }
  // The umask cannot widen 0600, but an explicit chmod documents the invariant.
  await chmod(tmp, 0o600);
  return tmp;
}

/** Replace `path` atomically: readers see the old content or the new, never a partial file. */
export async function writeFileAtomic(path: string, content: string): Promise<void> {
  const tmp = await writeTemp(path, content);
  try {
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/**
 * Create `path` atomically only if it does not exist yet. Returns false when another writer
 * (another process sharing the directory) created it first; its content then wins.
 */
export async function createFileAtomic(path: string, content: string): Promise<boolean> {
  const tmp = await writeTemp(path, content);
  try {
    await link(tmp, path);
    return true;
  } catch (e) {
    if (typeof e === "object" && e !== null && "code" in e && e.code === "EEXIST") return false;
    throw e;
  } finally {
    await rm(tmp, { force: true });
  }
}
