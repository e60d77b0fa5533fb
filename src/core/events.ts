import type { ErrorCode } from "./errors.js";
import type { SessionEndReason, SessionInfo } from "./session.js";
import type { ConnectionType } from "./connection.js";

/**
 * Everything that happens on the data path, as typed events. Protocol engines produce them;
 * the one pipeline judges the decidable ones (`JudgedEvent`) and records/audits all of them.
 */
export type GatewayEvent = JudgedEvent | ObservedEvent;

/** Events that need a decision before anything is forwarded. */
export type JudgedEvent = SessionStartEvent | DbQueryEvent | SshCommandEvent;

/** Facts: recorded and audited, never refused. */
export type ObservedEvent = SessionEndEvent | DbResultEvent | AuthFailureEvent;

export interface SessionStartEvent {
  readonly type: "session.start";
  readonly session: SessionInfo;
}

export interface SessionEndEvent {
  readonly type: "session.end";
  readonly session: SessionInfo;
  readonly reason: SessionEndReason;
  /** A safe, client-facing description of why the session ended abnormally. */
  readonly detail?: string;
  readonly statements: number;
  readonly bytesFromClient: number;
  readonly bytesToClient: number;
}

/** How a statement reached the gateway. */
export type DbQueryStage =
  | "simple" // a simple-protocol Query (may hold several statements)
  | "parse" // extended protocol: Parse of a (named or unnamed) prepared statement
  | "bind" // extended protocol: Bind of a statement prepared by SQL PREPARE (judged as `EXECUTE name`)
  | "function_call"; // fastpath FunctionCall: no SQL to inspect

export interface DbQueryEvent {
  readonly type: "db.query";
  readonly session: SessionInfo;
  /** 1-based sequence of statements within the session. */
  readonly seq: number;
  readonly stage: DbQueryStage;
  readonly sql: string;
  /** Prepared statement name for `parse` ("" = unnamed). */
  readonly statementName?: string;
}

/** One result (or failure) of a statement that was forwarded. */
export interface DbResultEvent {
  readonly type: "db.result";
  readonly session: SessionInfo;
  /** The `seq` of the DbQueryEvent this result belongs to. */
  readonly seq: number;
  /** Bind parameters as the client sent them (text, or `\x…` hex for binary), for `execute`. */
  readonly params?: readonly (string | null)[];
  /** Portal execution of a prepared statement, or the simple query itself. */
  readonly kind: "simple" | "execute";
  readonly commandTag?: string;
  readonly rowCount: number;
  readonly columns?: readonly string[];
  /** The first rows the client received (text), up to the configured cap. */
  readonly rows?: readonly (readonly (string | null)[])[];
  readonly rowsTruncated?: boolean;
  readonly error?: { readonly sqlstate: string; readonly message: string };
  readonly durationMs: number;
  /** Values masked in this result, per kind (counts only, never values). */
  readonly masked?: Readonly<Record<string, number>>;
  /** Rows the client received, when a row limit cut the result. */
  readonly rowsSent?: number;
}

export interface AuthFailureEvent {
  readonly type: "auth.failure";
  readonly protocol: ConnectionType;
  readonly connection?: string;
  readonly clientAddress: string;
  readonly code: ErrorCode;
  /** Safe description (never the presented credential). */
  readonly reason: string;
  /** The user name the client claimed, if any. */
  readonly claimedUser?: string;
}

/**
 * SSH events (issue 6), judged by `SessionGate.judgeCommand` before anything reaches the target:
 * an exec request, one line typed into an interactive shell, a subsystem or shell channel, or a
 * local port forward (direct-tcpip).
 */
export type SshCommandEvent = SshExecEvent | SshInputEvent | SshChannelEvent | SshForwardEvent;

export interface SshExecEvent {
  readonly type: "ssh.exec";
  readonly session: SessionInfo;
  readonly seq: number;
  readonly command: string;
}

/** A line typed into an interactive shell, judged at Enter (best effort: see README). */
export interface SshInputEvent {
  readonly type: "ssh.input";
  readonly session: SessionInfo;
  readonly seq: number;
  readonly line: string;
  /** Editing keys (arrows, tab completion, history) were used: the line may differ from what the shell runs. */
  readonly edited: boolean;
}

/** A shell or subsystem (sftp) channel being opened. */
export interface SshChannelEvent {
  readonly type: "ssh.channel";
  readonly session: SessionInfo;
  readonly seq: number;
  readonly channel: "shell" | "subsystem";
  /** The subsystem name (sftp). */
  readonly name?: string;
}

export interface SshForwardEvent {
  readonly type: "ssh.forward";
  readonly session: SessionInfo;
  readonly seq: number;
  readonly host: string;
  readonly port: number;
}
