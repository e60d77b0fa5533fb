/** Test helper: a PolicyEvaluator session over parsed policies, judged synchronously. Not used
 * by production code. */
import type { EvaluatorVerdict as Verdict } from "../../core/decision.js";
import type { SessionInfo } from "../../core/session.js";
import { parseConfig, type RawConfig } from "../../runtime/config.js";
import { PolicyEvaluator } from "../policies.js";
import { ClassificationCache } from "./normalize.js";

export type RawPolicy = NonNullable<RawConfig["policies"]>[number];

const CONNECTIONS = [{ name: "shop", type: "postgres", host: "db", database: "shop", user: "app", groups: ["agents"] }];

/** Opens a session under `policies` and returns a function judging one simple Query. */
export function policySession(policies: readonly RawPolicy[]): (sql: string) => Verdict {
  const config = parseConfig({ connections: CONNECTIONS, policies });
  const evaluator = new PolicyEvaluator(config.policies, config.connections, new ClassificationCache(), undefined);
  const info: SessionInfo = {
    id: crypto.randomUUID(),
    clientProtocol: "postgres",
    targetType: "postgres",
    connection: "shop",
    principal: { kind: "service_account", id: "sa:bot", name: "bot", groups: ["agents"] },
    clientAddress: "127.0.0.1:5000",
    startedAt: new Date(),
    attributes: {},
  };
  const session = evaluator.openSession(info);
  if (session === undefined) throw new Error("no policy applies to this session");
  let seq = 0;
  return (sql) => {
    const d = session.evaluate({ type: "db.query", session: info, seq: ++seq, stage: "simple", sql });
    if (d === undefined || d instanceof Promise) throw new Error("expected a synchronous decision");
    return d;
  };
}

/** The rule that refused, or "allow" / "hold". */
export function outcome(v: Verdict): string {
  return v.type === "deny" ? (v.rule ?? "deny") : v.type;
}
