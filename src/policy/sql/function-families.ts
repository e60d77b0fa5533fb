/**
 * Dangerous built-in functions by what they do, not by name. PostgreSQL has several names for
 * one capability — old aliases kept for compatibility (`pg_read_file_old`, `pg_logfile_rotate`),
 * binary and text variants (`pg_read_binary_file`), one function per directory
 * (`pg_ls_logdir`, `pg_ls_waldir`, …), lock/unlock and try/xact variants — so a policy that
 * names one member (`functions: [pg_read_file]`) must hold for every member of its family.
 *
 * The walker reports, for every call of a member, every member of each family it belongs to
 * (qualified as the call was: `pg_catalog.pg_read_file_old` also reports
 * `pg_catalog.pg_read_file`, …), and the family's name in `functionFamilies`. Matching is on
 * the folded name, so quoting and case make no difference (`"pg_read_file_old"`).
 *
 * Names are PostgreSQL 15–18 built-ins (pg_proc.proname) and the functions of the contrib
 * modules that ship with it (adminpack, dblink, postgres_fdw). A family lists equivalents in
 * effect: a policy that denies one has no reason to allow another. A name may sit in two
 * families (`lo_import` reads a server file into a large object). No built-in function runs a
 * program: `COPY … PROGRAM` is the operation `program`, and functions in untrusted languages
 * are refused as unknown effects where they are created.
 */

export interface FunctionFamily {
  /** The family's name, reported in StatementFacts.functionFamilies. */
  readonly name: string;
  /** What its members can do, for documentation and refusal messages. */
  readonly does: string;
  readonly members: readonly string[];
}

export const FUNCTION_FAMILIES: readonly FunctionFamily[] = [
  {
    name: "server_file_read",
    does: "read a file on the database server",
    members: ["pg_read_file", "pg_read_file_old", "pg_read_binary_file", "pg_file_read", "lo_import"],
  },
  {
    name: "server_file_list",
    does: "list a directory or a file's metadata on the database server",
    members: [
      "pg_ls_dir", "pg_stat_file", "pg_ls_logdir", "pg_ls_waldir", "pg_ls_tmpdir", "pg_ls_archive_statusdir",
      "pg_ls_logicalsnapdir", "pg_ls_logicalmapdir", "pg_ls_replslotdir", "pg_ls_summariesdir", "pg_logdir_ls",
    ],
  },
  {
    name: "server_file_write",
    does: "write, rename or remove a file on the database server",
    members: ["pg_file_write", "pg_file_rename", "pg_file_unlink", "pg_file_sync", "lo_export"],
  },
  {
    name: "large_object_server_io",
    does: "move a large object to or from a file on the database server",
    members: ["lo_import", "lo_export"],
  },
  {
    name: "remote_sql",
    does: "run SQL over another database connection",
    members: [
      "dblink", "dblink_exec", "dblink_connect", "dblink_connect_u", "dblink_open", "dblink_fetch", "dblink_send_query",
      "dblink_get_result", "dblink_close", "dblink_disconnect", "postgres_fdw_disconnect", "postgres_fdw_disconnect_all",
    ],
  },
  {
    name: "backend_signal",
    does: "cancel or terminate other sessions, or signal the server",
    members: [
      "pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf", "pg_rotate_logfile", "pg_logfile_rotate",
      "pg_log_backend_memory_contexts", "pg_promote",
    ],
  },
  {
    name: "advisory_lock",
    does: "take or release advisory locks that other sessions wait on",
    members: [
      "pg_advisory_lock", "pg_advisory_lock_shared", "pg_try_advisory_lock", "pg_try_advisory_lock_shared",
      "pg_advisory_xact_lock", "pg_advisory_xact_lock_shared", "pg_try_advisory_xact_lock",
      "pg_try_advisory_xact_lock_shared", "pg_advisory_unlock", "pg_advisory_unlock_shared", "pg_advisory_unlock_all",
    ],
  },
  {
    name: "sleep",
    does: "hold the session (and its locks) for a chosen time",
    members: ["pg_sleep", "pg_sleep_for", "pg_sleep_until"],
  },
  {
    name: "settings_change",
    does: "change a run-time setting",
    members: ["set_config"],
  },
  {
    name: "logical_decoding",
    does: "read the changed rows of every table from a replication slot",
    members: [
      "pg_logical_slot_get_changes", "pg_logical_slot_peek_changes", "pg_logical_slot_get_binary_changes",
      "pg_logical_slot_peek_binary_changes",
    ],
  },
  {
    name: "replication_slot",
    does: "create or drop a replication slot (which holds WAL on the server)",
    members: [
      "pg_create_logical_replication_slot", "pg_create_physical_replication_slot", "pg_drop_replication_slot",
      "pg_copy_logical_replication_slot", "pg_copy_physical_replication_slot", "pg_replication_slot_advance",
    ],
  },
];

const BY_MEMBER: ReadonlyMap<string, readonly FunctionFamily[]> = (() => {
  const m = new Map<string, FunctionFamily[]>();
  for (const f of FUNCTION_FAMILIES) {
    for (const name of f.members) {
      const list = m.get(name);
      if (list === undefined) m.set(name, [f]);
      else list.push(f);
    }
  }
  return m;
})();

/** The families a function (its bare name, any case) belongs to; empty for most functions. */
export function familiesOf(bareName: string): readonly FunctionFamily[] {
  return BY_MEMBER.get(bareName.toLowerCase()) ?? [];
}
