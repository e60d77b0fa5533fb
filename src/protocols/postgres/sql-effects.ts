/**
 * What a statement does to the target's session state that result tracking must follow:
 * cursors (DECLARE, FETCH/MOVE, CLOSE) and prepared statements (PREPARE, DEALLOCATE, DISCARD).
 * The names come from the real PostgreSQL parser; the effects are applied only once the
 * target confirms them (CommandComplete), never when the text is sent.
 */
import { asNode, bool, str } from "../../policy/sql/ast.js";
import { MAX_SQL_DEPTH, parseSyncBounded, type ParseLimits } from "../../policy/sql/limits.js";
import { copyOutSpec, type CopyOutSpec } from "./copy-spec.js";

export type SqlEffect =
  | { readonly kind: "plain" }
  | { readonly kind: "declare"; readonly cursor: string; readonly hold: boolean }
  /** FETCH (rows of the cursor) or MOVE (no rows). */
  | { readonly kind: "fetch"; readonly cursor: string }
  | { readonly kind: "close_cursor"; readonly cursor: string | undefined }
  | { readonly kind: "prepare"; readonly name: string }
  | { readonly kind: "deallocate"; readonly name: string | undefined }
  | { readonly kind: "discard_all" }
  /** COPY … TO STDOUT: what its stream holds (copy-spec.ts), for masking it. */
  | { readonly kind: "copy_out"; readonly spec: CopyOutSpec }
  /** The text could not be parsed here: whatever rows it produces have no known origin. */
  | { readonly kind: "unknown" };

export const PLAIN: SqlEffect = { kind: "plain" };

/** CURSOR_OPT_HOLD (src/include/nodes/parsenodes.h): the cursor survives its transaction. */
const CURSOR_OPT_HOLD = 0x0020;

/**
 * Cheap pre-check: only texts naming one of these keywords can have a tracked effect, so the
 * hot path (ordinary SELECT/INSERT…) pays one regex, not a second parse.
 */
const KEYWORDS = /declare|fetch|move|close|prepare|deallocate|discard|copy/i;

/**
 * This parse runs in the event loop (the judge's ran in a parser worker): bounded so that no
 * text can stall or break the in-process parser; beyond the bounds the effects are unknown
 * and the statement's rows are refused (fail closed).
 */
const EFFECT_PARSE_LIMITS: ParseLimits = { maxBytes: 256 * 1024, maxDepth: MAX_SQL_DEPTH };

/** The effects of each statement in `sql`, in order (a simple Query may carry several). */
export function sqlEffects(sql: string): readonly SqlEffect[] {
  if (!KEYWORDS.test(sql)) return [PLAIN];
  let stmts: readonly { stmt?: unknown; stmt_location?: number; stmt_len?: number }[];
  try {
    const tree = parseSyncBounded(sql, EFFECT_PARSE_LIMITS) as { stmts?: readonly { stmt?: unknown; stmt_location?: number; stmt_len?: number }[] };
    stmts = tree.stmts ?? [];
  } catch {
    return [{ kind: "unknown" }];
  }
  let bytes: Buffer | undefined;
  return stmts.map((s) =>
    effectOf(s.stmt, () => {
      // The statement's own text (locations are byte offsets into the UTF-8 text).
      bytes ??= Buffer.from(sql, "utf8");
      const from = s.stmt_location ?? 0;
      return bytes.subarray(from, s.stmt_len === undefined || s.stmt_len === 0 ? bytes.length : from + s.stmt_len).toString("utf8");
    }),
  );
}

function effectOf(stmt: unknown, text: () => string): SqlEffect {
  const node = asNode(stmt);
  if (node === undefined) return PLAIN;
  const [type, body] = node;
  const name = (key: string): string | undefined => str(body, key);
  switch (type) {
    case "DeclareCursorStmt": {
      const cursor = name("portalname");
      const options = typeof body["options"] === "number" ? body["options"] : 0;
      return cursor === undefined ? { kind: "unknown" } : { kind: "declare", cursor, hold: (options & CURSOR_OPT_HOLD) !== 0 };
    }
    case "FetchStmt": {
      const cursor = name("portalname");
      if (cursor === undefined) return { kind: "unknown" };
      return bool(body, "ismove") ? PLAIN : { kind: "fetch", cursor };
    }
    case "ClosePortalStmt":
      return { kind: "close_cursor", cursor: name("portalname") };
    case "PrepareStmt": {
      const n = name("name");
      return n === undefined ? { kind: "unknown" } : { kind: "prepare", name: n };
    }
    case "DeallocateStmt":
      return bool(body, "isall") ? { kind: "deallocate", name: undefined } : { kind: "deallocate", name: name("name") };
    case "DiscardStmt":
      return str(body, "target") === "DISCARD_ALL" ? { kind: "discard_all" } : PLAIN;
    case "CopyStmt": {
      const spec = copyOutSpec(body, text());
      return spec === undefined ? PLAIN : { kind: "copy_out", spec };
    }
    default:
      return PLAIN;
  }
}
