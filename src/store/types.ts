import type { AuditRecord } from "../audit/types.js";
import type { ApprovalStore } from "./approvals.js";
import type { ConsoleDocumentStore } from "./console-documents.js";
import type { McpPinStore } from "./mcp-pins.js";
import type { BudgetCounterStore } from "./budgets.js";
import type { RecordingChunkStore } from "./recording-chunks.js";
import type { PrincipalKind } from "../core/principal.js";
import type { SessionEndReason } from "../core/session.js";
import type { SqlInstanceStore } from "./instances.js";

/**
 * Persistence for the control plane. Two implementations share one schema and one set of
 * migrations: embedded SQLite (default, under dataDir), embedded PGlite (`store.embedded:
 * pglite`, or an existing PGlite dataDir) and PostgreSQL (`store.url`).
 * The data path never waits on the store per statement: audit records reach it
 * asynchronously from the local audit log.
 */
export interface Store {
  readonly kind: "pglite" | "postgres" | "sqlite";
  /** Approval requests and grants (absent in test doubles that keep audit records only). */
  readonly approvals?: ApprovalStore;
  /** Connections and policies created in the web console (absent in test doubles). */
  readonly consoleDocuments?: ConsoleDocumentStore;
  /** Pinned tool fingerprints of upstream MCP servers (absent in test doubles). */
  readonly mcpPins?: McpPinStore;
  /** Budget counters shared by the gateways on the store (absent in test doubles: counters stay in memory). */
  readonly budgets?: BudgetCounterStore;
  /** Session recordings kept in the store (read by every gateway on a shared store; absent in test doubles). */
  readonly recordingChunks?: RecordingChunkStore;
  /** Apply pending migrations (idempotent; safe to call at every start). */
  migrate(): Promise<void>;
  /**
   * Claim the store for this gateway's audit chain (one writer per store: two would fork it).
   * Throws GW_CONFIG when another gateway holds it. Absent in test doubles.
   */
  claimWriter?(): Promise<void>;
  close(): Promise<void>;

  // Tokens: metadata only, never the token itself.
  insertToken(row: TokenRow): Promise<void>;
  getToken(id: string): Promise<TokenRow | undefined>;
  /** Returns false when the token id is unknown. Idempotent for already revoked tokens. */
  revokeToken(id: string, revokedAt: Date, revokedBy: string): Promise<boolean>;
  /** Revoked token ids (optionally only those revoked after `since`) that have not expired yet. */
  listRevokedTokens(since?: Date): Promise<readonly { id: string; revokedAt: Date }[]>;

  // Sessions.
  insertSession(row: SessionRow): Promise<void>;
  endSession(id: string, end: SessionEnd): Promise<void>;
  getSession(id: string): Promise<SessionRow | undefined>;
  /** Newest first. */
  listSessions(query: { readonly limit: number; readonly offset?: number; readonly connection?: string }): Promise<readonly SessionRow[]>;

  // Audit (written by the audit shipper, read by verify and the API): this gateway instance's chain.
  appendAudit(records: readonly AuditRecord[]): Promise<void>;
  lastAudit(): Promise<AuditRecord | undefined>;
  /** Records with seq > afterSeq, ascending, at most `limit`. */
  readAudit(afterSeq: number, limit: number): Promise<readonly AuditRecord[]>;

  /** This gateway instance's id (its audit chain's name). Absent in test doubles. */
  readonly instanceId?: string;
  /** Another instance's audit chain, read-only. Absent in test doubles. */
  chain?(id: string): AuditChainReader;
  /** Gateway instances sharing the store (src/store/instances.ts). Absent in test doubles. */
  readonly instances?: SqlInstanceStore;
}

/** One audit chain of the store, read-only. */
export type AuditChainReader = Pick<Store, "lastAudit" | "readAudit">;

export interface TokenRow {
  readonly id: string; // the JWT's jti
  readonly principalId: string;
  readonly principalKind: PrincipalKind;
  readonly principalName: string;
  readonly createdAt: Date;
  readonly expiresAt: Date;
  readonly createdBy: string;
  readonly revokedAt?: Date;
  readonly revokedBy?: string;
}

export interface SessionRow {
  readonly id: string;
  readonly protocol: string;
  readonly connection: string;
  readonly principalId: string;
  readonly principalKind: PrincipalKind;
  readonly principalName: string;
  readonly groups: readonly string[];
  readonly tokenId?: string;
  readonly clientAddress: string;
  readonly startedAt: Date;
  readonly attributes: Readonly<Record<string, string>>;
  readonly endedAt?: Date;
  readonly endReason?: SessionEndReason;
  readonly endDetail?: string;
  readonly statements?: number;
  readonly bytesFromClient?: number;
  readonly bytesToClient?: number;
  /** The gateway instance that holds (or held) the session. */
  readonly instanceId?: string;
}

export interface SessionEnd {
  readonly endedAt: Date;
  readonly reason: SessionEndReason;
  readonly detail?: string;
  readonly statements: number;
  readonly bytesFromClient: number;
  readonly bytesToClient: number;
}
