/**
 * This gateway's instance id (issue 18): the name of the audit chain it writes in the store and
 * the owner of the sessions it holds. Stable across restarts, so a restarted gateway continues
 * its own chain and closes its own lost sessions:
 *   1. `instance.id` in the configuration, else
 *   2. the AIRLOCK_INSTANCE_ID environment variable, else
 *   3. `<dataDir>/instance-id`, written once: "default" when the dataDir already holds an audit
 *      log (a gateway from before instances existed continues the store's "default" chain),
 *      else a new random id.
 * Two gateways must never share an id: the store's writer lock refuses the second one.
 */
import { randomBytes } from "node:crypto";
import { existsSync, statSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { GatewayError } from "../core/errors.js";
import { DEFAULT_INSTANCE_ID, INSTANCE_ID_RE } from "../store/instances.js";

export const INSTANCE_ID_FILE = "instance-id";

function errno(e: unknown): string | undefined {
  return typeof e === "object" && e !== null && "code" in e && typeof e.code === "string" ? e.code : undefined;
}

function checked(id: string, where: string): string {
  if (!INSTANCE_ID_RE.test(id)) {
    throw new GatewayError("GW_CONFIG", `${where} is not a valid instance id (letters, digits, '.', '_' or '-', at most 63, starting with a letter or digit)`);
  }
  return id;
}

export async function resolveInstanceId(options: { readonly configured?: string; readonly env: NodeJS.ProcessEnv; readonly dataDir: string }): Promise<string> {
  if (options.configured !== undefined) return checked(options.configured, "instance.id");
  const fromEnv = options.env["AIRLOCK_INSTANCE_ID"];
  if (fromEnv !== undefined && fromEnv !== "") return checked(fromEnv, "AIRLOCK_INSTANCE_ID");
  const file = join(options.dataDir, INSTANCE_ID_FILE);
  try {
    const text = await readFile(file, { encoding: "utf8" });
    if (text.length > 200) throw new GatewayError("GW_CONFIG", `${file} is too long to hold an instance id`);
    return checked(text.trim(), file);
  } catch (e) {
    if (errno(e) !== "ENOENT") {
      if (e instanceof GatewayError) throw e;
      throw new GatewayError("GW_CONFIG", `cannot read ${file}`, { cause: e });
    }
  }
  const log = join(options.dataDir, "audit", "audit.log");
  const upgraded = existsSync(log) && statSync(log).size > 0;
  const id = upgraded ? DEFAULT_INSTANCE_ID : `gw-${randomBytes(6).toString("hex")}`;
  try {
    // "wx": two processes starting on one dataDir do not both write; the loser reads the winner's.
    await writeFile(file, `${id}\n`, { mode: 0o600, flag: "wx" });
  } catch (e) {
    if (errno(e) === "EEXIST") return resolveInstanceId(options);
    throw new GatewayError("GW_CONFIG", `cannot write ${file}`, { cause: e });
  }
  return id;
}
