/**
 * The statement corpus for bench/mysql-parsers.ts: statements a MySQL/MariaDB server receives,
 * extracted from
 * - mysqldump / mariadb-dump output (`*.sql`): split as the mariadb client splits a script
 *   (its `DELIMITER` command is the client's, never sent to the server);
 * - mysqltest files of a server test suite (`*.test`): the SQL lines, without the mysqltest
 *   commands (`--echo`, `let`, `eval`, `if`, …), and without statements the test expects to be
 *   a syntax error (`--error ER_PARSE_ERROR`).
 * Pure text processing; no parser involved (the same text goes to every candidate).
 */

export interface CorpusStatement {
  readonly source: string;
  readonly sql: string;
  /** The test expects the server to refuse it as a syntax error. */
  readonly invalid?: boolean;
}

/** Splits client script text at the current delimiter, outside quotes and comments. */
function splitScript(text: string, source: string, onLine?: (line: string) => "skip" | "keep" | "invalid"): CorpusStatement[] {
  const out: CorpusStatement[] = [];
  let delimiter = ";";
  let buf = "";
  let quote = 0;
  let blockComment = false;
  let invalid = false;
  const lines = text.split("\n");
  for (const line of lines) {
    if (buf.trim() === "" && quote === 0 && !blockComment) {
      buf = "";
      const m = /^\s*delimiter\s+(\S+)\s*$/i.exec(line);
      if (m?.[1] !== undefined) {
        delimiter = m[1];
        continue;
      }
      const verdict = onLine?.(line) ?? "keep";
      if (verdict === "skip") continue;
      invalid = verdict === "invalid";
    }
    let i = 0;
    const s = line + "\n";
    while (i < s.length) {
      const c = s.charCodeAt(i);
      if (blockComment) {
        if (c === 42 && s.charCodeAt(i + 1) === 47) {
          blockComment = false;
          buf += "*/";
          i += 2;
          continue;
        }
        buf += s.charAt(i);
        i++;
        continue;
      }
      if (quote !== 0) {
        if (c === 92 && quote !== 96) {
          buf += s.slice(i, i + 2);
          i += 2;
          continue;
        }
        if (c === quote) quote = 0;
        buf += s.charAt(i);
        i++;
        continue;
      }
      if (c === 39 || c === 34 || c === 96) {
        quote = c;
        buf += s.charAt(i);
        i++;
        continue;
      }
      if (c === 47 && s.charCodeAt(i + 1) === 42) {
        blockComment = true;
        buf += "/*";
        i += 2;
        continue;
      }
      if (c === 35 || (c === 45 && s.charCodeAt(i + 1) === 45 && (s.charCodeAt(i + 2) <= 32 || i + 2 >= s.length))) {
        buf += s.slice(i, s.length - 1);
        i = s.length - 1;
        continue;
      }
      if (s.startsWith(delimiter, i)) {
        const stmt = buf.trim();
        if (stmt !== "") out.push(invalid ? { source, sql: stmt, invalid } : { source, sql: stmt });
        buf = "";
        invalid = false;
        i += delimiter.length;
        continue;
      }
      buf += s.charAt(i);
      i++;
    }
  }
  return out;
}

/** Statements of a dump file. */
export function dumpStatements(text: string, source: string): CorpusStatement[] {
  // XML dumps and other non-SQL output have no statements worth measuring.
  if (text.trimStart().startsWith("<?xml")) return [];
  return splitScript(text, source).filter((s) => !/^(--[^\n]*\n?|\s)*$/.test(s.sql));
}

const MYSQLTEST_COMMANDS = new Set([
  "let", "eval", "echo", "source", "connect", "connection", "disconnect", "if", "while", "end", "inc", "dec",
  "error", "sleep", "real_sleep", "send", "reap", "replace_result", "replace_column", "replace_regex", "exec",
  "perl", "write_file", "append_file", "cat_file", "remove_file", "remove_files_wildcard", "file_exists",
  "copy_file", "move_file", "mkdir", "rmdir", "list_files", "vertical_results", "horizontal_results",
  "sorted_result", "lowercase_result", "die", "exit", "skip", "chmod", "change_user", "character_set",
  "result_format", "start_timer", "end_timer", "ping", "shutdown_server", "send_eval", "dirty_close", "query_vertical",
  "query_horizontal", "query_get_value", "save_master_pos", "sync_with_master", "sync_slave_with_master",
  "wait_for_slave_to_stop", "enable_warnings", "disable_warnings", "enable_query_log", "disable_query_log",
  "enable_result_log", "disable_result_log", "enable_abort_on_error", "disable_abort_on_error", "enable_info",
  "disable_info", "enable_metadata", "disable_metadata", "enable_ps_protocol", "disable_ps_protocol",
  "enable_reconnect", "disable_reconnect", "enable_connect_log", "disable_connect_log", "enable_session_track_info",
  "disable_session_track_info", "enable_parsing", "disable_parsing", "enable_ps2_protocol", "disable_ps2_protocol",
  "enable_view_protocol", "disable_view_protocol", "enable_cursor_protocol", "disable_cursor_protocol",
  "enable_service_connection", "disable_service_connection", "enable_prepare_warnings", "disable_prepare_warnings",
  "enable_column_names", "disable_column_names", "enable_async_client", "disable_async_client", "enable_non_blocking_api",
  "disable_non_blocking_api", "enable_rpl_parse", "disable_rpl_parse", "enable_query_ms", "disable_query_ms",
  "assert", "output", "require", "query_attributes", "copy_files_wildcard", "force-rmdir", "force-cpdir", "diff_files",
  "send_quit", "wait_till_ready", "reset_connection", "}", "{", "else", "let", "expr",
]);

/** Statements of a mysqltest file (see the module comment). */
export function mysqltestStatements(text: string, source: string): CorpusStatement[] {
  let expectParseError = false;
  const onLine = (line: string): "skip" | "keep" | "invalid" => {
    const t = line.trim();
    if (t === "" || t.startsWith("#")) return "skip";
    if (t.startsWith("--")) {
      const m = /^--\s*error\s+(.*)$/i.exec(t);
      if (m?.[1] !== undefined) expectParseError = /ER_PARSE_ERROR|1064|ER_SYNTAX_ERROR|1149/i.test(m[1]);
      return "skip";
    }
    const word = /^[a-z_}{-]+/i.exec(t)?.[0]?.toLowerCase();
    // `if (…) {`, `while (…) {`, `}`, `let $x = …;`, … are mysqltest's own language.
    if (word !== undefined && MYSQLTEST_COMMANDS.has(word)) return "skip";
    const verdict = expectParseError ? "invalid" : "keep";
    expectParseError = false;
    return verdict;
  };
  return splitScript(text, source, onLine).filter((s) => {
    if (s.sql.includes("$")) return false; // mysqltest variables: not SQL as sent
    const first = /^[a-z_]+/i.exec(s.sql)?.[0]?.toLowerCase();
    return first === undefined || !MYSQLTEST_COMMANDS.has(first);
  });
}
