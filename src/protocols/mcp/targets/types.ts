/**
 * What a loopback call to one of the gateway's own listeners comes back as. The MCP server is a
 * client of the gateway's engines (PostgreSQL wire, SSH, RESP) with the caller's own credential,
 * so judging, holding, masking, recording and audit are exactly the wire path's; these types are
 * the engine-neutral shape of the answer, turned into envelopes by the tools.
 */
import type { HoldNotice } from "../../../core/judge.js";
import type { Correlation } from "../correlation.js";

/** The gateway's own listener a loopback call goes to. */
export interface LoopbackEndpoint {
  readonly host: string;
  readonly port: number;
}

/** Who is calling: their bearer credential (never logged, never returned) and principal id. */
export interface LoopbackCaller {
  readonly bearer: string;
  readonly principalId: string;
  readonly correlation: Correlation;
  /**
   * Registers the loopback socket's local port before it sends anything (correlation.ts);
   * `onHold`: told when a statement of that session waits for approval (protocols without an in-band notice).
   */
  readonly expect: (localPort: number, onHold?: (n: HoldNotice) => void) => () => void;
}

/** A gateway refusal read back from the wire (`airlock: MESSAGE (rule: RULE)`). */
export interface Refused<C extends string = string> {
  readonly type: "refused";
  readonly code: C;
  readonly rule?: string;
  readonly message: string;
}

/** The call waits for a person's decision. `result` settles when it is decided (wait mode); absent: re-send once approved (async mode). */
export interface Held<T> {
  readonly type: "held";
  readonly approvalId: string;
  readonly message: string;
  readonly result?: Promise<T | Refused | TargetError>;
}

/** The target (or the gateway on its behalf) failed the call; the text is what the client saw (masked). */
export interface TargetError {
  readonly type: "error";
  readonly code: string;
  readonly message: string;
}
