/**
 * The `redis` tool over the gateway's own RESP listener: `AUTH CONNECTION TOKEN`, then the one
 * command, judged, masked, recorded and audited by the Redis engine as redis-cli's would be.
 * Replies are read with the engine's bounded RESP codec (a pure codec: no engine code).
 */
import { connect as netConnect } from "node:net";
import { approvalIdIn, parseRefusalText } from "../envelope.js";
import { RespReader, encodeCommand, type RespValue } from "../../redis/wire/resp.js";
import type { LoopbackCaller, LoopbackEndpoint, Refused, TargetError, Held } from "./types.js";

export type JsonValue = string | number | boolean | null | readonly JsonValue[] | { readonly [k: string]: JsonValue };

export interface RedisReply {
  readonly type: "reply";
  readonly reply: JsonValue;
}

export type RedisOutcome = RedisReply | Refused | Held<RedisReply> | TargetError;

const TIMEOUT_MS = 60_000;

/** A RESP value as JSON (binary-safe enough for agents: UTF-8 text). */
export function respToJson(v: RespValue): JsonValue {
  switch (v.type) {
    case "simple":
    case "double":
    case "bignum":
      return v.value;
    case "error":
      return { error: v.value };
    case "bulkError":
      return { error: v.value.toString("utf8") };
    case "integer":
      return Number(v.value);
    case "bulk":
      return v.value === null ? null : v.value.toString("utf8");
    case "verbatim":
      return v.value.toString("utf8");
    case "array":
      return v.value === null ? null : v.value.map(respToJson);
    case "set":
    case "push":
      return v.value.map(respToJson);
    case "null":
      return null;
    case "boolean":
      return v.value;
    case "map":
      return v.value.map(([k, val]) => [respToJson(k), respToJson(val)]);
    case "attribute":
      return respToJson(v.value);
  }
}

function errorText(v: RespValue): string | undefined {
  if (v.type === "error") return v.value;
  if (v.type === "bulkError") return v.value.toString("utf8");
  return undefined;
}

export function runRedis(endpoint: LoopbackEndpoint, caller: LoopbackCaller, call: { readonly connection: string; readonly args: readonly string[]; readonly maxBytes: number }): Promise<RedisOutcome> {
  return new Promise<RedisOutcome>((resolve) => {
    const reader = new RespReader({ limits: { maxBulkBytes: call.maxBytes, maxElements: 100_000, maxDepth: 32 } });
    const sock = netConnect({ host: endpoint.host, port: endpoint.port });
    let release: (() => void) | undefined;
    let stage: "auth" | "command" = "auth";
    let done = false;
    const finish = (o: RedisOutcome): void => {
      if (done) return;
      done = true;
      release?.();
      sock.destroy();
      resolve(o);
    };
    sock.setTimeout(TIMEOUT_MS, () => finish({ type: "error", code: "GW_TIMEOUT", message: "no reply from the gateway's Redis listener" }));
    sock.once("error", () => finish({ type: "error", code: "GW_UPSTREAM", message: "the gateway's Redis listener could not be reached" }));
    sock.once("connect", () => {
      release = caller.expect(sock.localPort ?? 0);
      sock.write(encodeCommand(["AUTH", call.connection, caller.bearer]));
    });
    sock.on("data", (chunk: Buffer) => {
      reader.push(chunk);
      try {
        for (let v = reader.next(); v !== undefined; v = reader.next()) {
          const err = errorText(v.value);
          if (stage === "auth") {
            if (err !== undefined) {
              const r = parseRefusalText(err.replace(/^[A-Z]+ /, ""));
              finish({ type: "refused", code: err.startsWith("WRONGPASS") ? "GW_AUTH_INVALID" : "GW_ACCESS_DENIED", ...(r?.rule === undefined ? {} : { rule: r.rule }), message: r?.message ?? err });
              return;
            }
            stage = "command";
            release?.();
            sock.write(encodeCommand(call.args));
            continue;
          }
          if (err !== undefined) {
            const r = parseRefusalText(err.replace(/^[A-Z]+ /, ""));
            if (r !== undefined) {
              const id = approvalIdIn(r.message);
              if (id !== undefined && /approve with/.test(r.message)) finish({ type: "held", approvalId: id, message: r.message });
              else finish({ type: "refused", code: "GW_POLICY_DENIED", ...(r.rule === undefined ? {} : { rule: r.rule }), message: r.message });
            } else finish({ type: "error", code: err.split(" ")[0] ?? "ERR", message: err });
            return;
          }
          finish({ type: "reply", reply: respToJson(v.value) });
          return;
        }
      } catch {
        finish({ type: "error", code: "GW_PROTOCOL", message: "the reply could not be read (too large or malformed)" });
      }
    });
    sock.once("close", () => finish({ type: "error", code: "GW_UPSTREAM", message: "the gateway closed the connection" }));
  });
}
