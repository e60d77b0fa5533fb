import type { RawConfig } from "./config.js";

/**
 * The built-in demo's policy set, also used by the benchmark (so that numbers are measured
 * with guardrails, masking, recording and audit all on).
 */
export const DEMO_POLICIES: NonNullable<RawConfig["policies"]> = [
  {
    name: "no-destructive-ddl",
    match: { operations: ["drop", "truncate"] },
    action: "deny",
    message: "DROP and TRUNCATE are not allowed here",
  },
  {
    name: "no-bulk-writes",
    match: { operations: ["update", "delete"], noWhere: true },
    action: "deny",
    message: "UPDATE and DELETE need a WHERE clause",
  },
  {
    name: "deletes-need-approval",
    match: { operations: ["delete"] },
    action: "require_approval",
    approvers: ["dba"],
    message: "DELETE needs a person's approval",
  },
  {
    name: "no-server-files",
    // Each name stands for its whole family of built-in equivalents (src/policy/sql/function-families.ts):
    // pg_read_file also denies pg_read_file_old and pg_read_binary_file, pg_ls_dir every pg_ls_*dir, …
    match: { functions: ["pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_stat_file", "pg_file_write", "lo_import", "lo_export", "dblink*"] },
    action: "deny",
    message: "server-side file and network access is not allowed",
  },
  {
    name: "hide-pii",
    action: "mask",
    columns: ["*.email", "*.card_number", "*.phone"],
    detectors: ["email", "credit_card", "phone", "ssn", "secret"],
    strategy: "redact",
  },
  {
    name: "session-limits",
    action: "allow",
    maxRows: 1000,
    statementTimeout: "30s",
  },
];
