import { freePortOn } from "../../src/runtime/ports.js";

/** A free TCP port on loopback (taken by binding port 0, then released). */
export function freePort(host = "127.0.0.1"): Promise<number> {
  return freePortOn(host);
}
