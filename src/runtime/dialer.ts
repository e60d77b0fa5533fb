import { connect, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { DialTarget, Dialer } from "../core/engine.js";
import { GatewayError } from "../core/errors.js";

/** Reaches targets directly over TCP from the gateway's host. */
export class DirectDialer implements Dialer {
  dial(target: DialTarget, options: { readonly timeoutMs: number; readonly signal?: AbortSignal }): Promise<Duplex> {
    return new Promise((resolve, reject) => {
      const socket: Socket = connect({ host: target.host, port: target.port, noDelay: true, keepAlive: true, keepAliveInitialDelay: 30_000 });
      const fail = (cause: unknown): void => {
        cleanup();
        socket.destroy();
        reject(new GatewayError("GW_UPSTREAM_UNAVAILABLE", "cannot reach the target", { cause }));
      };
      const timer = setTimeout(() => fail(new Error(`connect timeout after ${options.timeoutMs} ms`)), options.timeoutMs);
      const onAbort = (): void => fail(new Error("aborted"));
      const cleanup = (): void => {
        clearTimeout(timer);
        socket.off("error", fail);
        options.signal?.removeEventListener("abort", onAbort);
      };
      socket.once("error", fail);
      options.signal?.addEventListener("abort", onAbort, { once: true });
      socket.once("connect", () => {
        cleanup();
        resolve(socket);
      });
    });
  }
}
