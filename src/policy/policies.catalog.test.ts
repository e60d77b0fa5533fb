/**
 * SessionPolicies and the target's catalog (issue 3 leftovers): attribute notation checked
 * against the relation's columns, views a session defines or renames before the catalog shows
 * them, and the role/database search_path default learned at session start.
 */
import { beforeAll, describe, expect, it } from "vitest";
import type { EvaluatorVerdict as Verdict } from "../core/decision.js";
import type { DbQueryEvent } from "../core/events.js";
import type { SessionInfo } from "../core/session.js";
import { parseConfig, type RawConfig } from "../runtime/config.js";
import type { SessionEvaluator } from "./evaluator.js";
import { PolicyEvaluator, type ViewResolver } from "./policies.js";
import { ClassificationCache, initSqlParser, type ColumnAccess } from "./sql/index.js";

type RawPolicy = NonNullable<RawConfig["policies"]>[number];
type Columns = ReadonlyMap<string, ReadonlyMap<string, ReadonlySet<string>>>;

beforeAll(async () => {
  await initSqlParser();
});

const CONNECTIONS = [{ name: "shop", type: "postgres", host: "db", database: "shop", user: "app", groups: ["agents"] }];

type Mode = "sync" | "async" | "reject" | "throw";

/** A target catalog: relations by name → schema → columns; views → base columns; a search_path default. */
class FakeCatalog implements ViewResolver {
  readonly columnCalls: string[][] = [];
  pathCalls = 0;
  constructor(
    readonly opts: {
      readonly mode?: Mode;
      readonly relations?: Readonly<Record<string, Readonly<Record<string, readonly string[]>>>>;
      readonly views?: Readonly<Record<string, readonly ColumnAccess[]>>;
      readonly searchPath?: readonly string[];
      readonly pathMode?: Mode;
    } = {},
  ) {}

  resolve(_connection: string, candidates: readonly { schema: string; name: string }[]): readonly ColumnAccess[] {
    return candidates.flatMap((c) => this.opts.views?.[`${c.schema}.${c.name}`] ?? []);
  }

  columns(_connection: string, names: readonly string[]): Columns | Promise<Columns> {
    this.columnCalls.push([...names].sort());
    const answer = new Map(
      names.map((n) => [n, new Map(Object.entries(this.opts.relations?.[n] ?? {}).map(([schema, cols]) => [schema, new Set(cols)] as const))] as const),
    );
    return settle(this.opts.mode ?? "sync", answer);
  }

  searchPath(): readonly string[] | Promise<readonly string[]> {
    this.pathCalls++;
    return settle(this.opts.pathMode ?? "sync", this.opts.searchPath ?? ["$user", "public"]);
  }
}

function settle<T>(mode: Mode, value: T): T | Promise<T> {
  switch (mode) {
    case "sync":
      return value;
    case "async":
      return Promise.resolve(value);
    case "reject":
      return Promise.reject(new Error("catalog unreachable"));
    case "throw":
      throw new Error("catalog unreachable");
  }
}

function open(policies: readonly RawPolicy[], resolver: ViewResolver | undefined): SessionEvaluator {
  const config = parseConfig({ connections: CONNECTIONS, policies });
  const info: SessionInfo = {
    id: crypto.randomUUID(),
    clientProtocol: "postgres", targetType: "postgres",
    connection: "shop",
    principal: { kind: "service_account", id: "sa:bot", name: "bot", groups: ["agents"] },
    clientAddress: "127.0.0.1:5000",
    startedAt: new Date(),
    attributes: {},
  };
  const s = new PolicyEvaluator(config.policies, config.connections, new ClassificationCache(), resolver).openSession(info);
  if (s === undefined) throw new Error("no policy applies");
  return s;
}

let seq = 0;
async function judge(s: SessionEvaluator, sql: string): Promise<Verdict> {
  const event: DbQueryEvent = { type: "db.query", session: { id: "x" } as SessionInfo, seq: ++seq, stage: "simple", sql };
  const d = await s.evaluate(event);
  if (d === undefined) throw new Error("no decision");
  return d;
}

/** The rule that refused, or "allow". */
async function outcome(s: SessionEvaluator, sql: string): Promise<string> {
  const d = await judge(s, sql);
  return d.type === "deny" ? (d.rule ?? "deny") : d.type;
}

const USERS = { users: { public: ["id", "name", "password", "ctid", "xmin"] } };
const NO_PASSWORDS: RawPolicy = { name: "no-passwords", match: { columns: ["users.password"] }, action: "deny" };
const NO_USERS_PW: RawPolicy = { name: "no-users-pw", match: { functions: ["users_pw"] }, action: "deny" };
const NO_USER_WRITES: RawPolicy = { name: "no-user-writes", match: { operations: ["insert", "update", "delete"], relations: ["users"] }, action: "deny" };

describe("attribute notation against the catalog", () => {
  it("reads t.x as a whole-row call x(t) when t has no column x", async () => {
    const s = open([NO_PASSWORDS], new FakeCatalog({ relations: USERS }));
    expect(await outcome(s, "SELECT u.users_pw FROM users u")).toBe("no-passwords");
    expect(await outcome(s, "SELECT (u).users_pw FROM users u")).toBe("no-passwords");
    expect(await outcome(s, "SELECT 1 FROM users u WHERE u.users_pw LIKE 'h%'")).toBe("no-passwords");
    expect(await outcome(s, "SELECT public.users.users_pw FROM public.users")).toBe("no-passwords");
  });

  it("keeps real columns (system columns too) precise", async () => {
    const catalog = new FakeCatalog({ relations: USERS });
    const s = open([NO_PASSWORDS], catalog);
    expect(await outcome(s, "SELECT u.name, u.id, u.ctid FROM users u WHERE u.xmin IS NOT NULL")).toBe("allow");
    expect(await outcome(s, "SELECT u.password FROM users u")).toBe("no-passwords");
    expect(catalog.columnCalls[0]).toEqual(["users"]);
  });

  it("reports the call to function guards", async () => {
    const s = open([NO_USERS_PW], new FakeCatalog({ relations: USERS }));
    expect(await outcome(s, "SELECT u.users_pw FROM users u")).toBe("no-users-pw");
    expect(await outcome(s, "SELECT u.name FROM users u")).toBe("allow");
  });

  it("only considers the relations a name may resolve to", async () => {
    // archive.users lacks `name`, but archive is not on the search path.
    const relations = { users: { public: ["id", "name", "password"], archive: ["id"] } };
    const s = open([NO_PASSWORDS], new FakeCatalog({ relations }));
    expect(await outcome(s, "SELECT u.name FROM users u")).toBe("allow");
    expect(await outcome(s, "SELECT u.name FROM archive.users u")).toBe("no-passwords");
  });

  it("assumes the call for a relation the catalog doesn't show", async () => {
    const s = open([NO_PASSWORDS], new FakeCatalog({ relations: {} }));
    expect(await outcome(s, "SELECT u.users_pw FROM users u")).toBe("no-passwords");
  });

  it("fails closed when the catalog can't answer", async () => {
    for (const mode of ["reject", "throw"] as const) {
      const s = open([NO_PASSWORDS], new FakeCatalog({ mode, relations: USERS }));
      expect(await outcome(s, "SELECT u.name FROM users u")).toBe("fail-closed");
    }
  });

  it("asks nothing without column or function guards, or without qualified references", async () => {
    const catalog = new FakeCatalog({ mode: "throw" });
    expect(await outcome(open([{ name: "no-drop", match: { operations: ["drop"] }, action: "deny" }], catalog), "SELECT u.x FROM users u")).toBe("allow");
    expect(await outcome(open([NO_PASSWORDS], catalog), "SELECT name FROM users")).toBe("allow");
    expect(catalog.columnCalls).toEqual([]);
  });
});

describe("views the catalog doesn't show yet", () => {
  it("sees a view created earlier in the same message", async () => {
    const s = open([NO_USER_WRITES, NO_PASSWORDS], new FakeCatalog({ relations: USERS }));
    expect(await outcome(s, "CREATE VIEW v11 AS SELECT id, name FROM users; INSERT INTO v11 VALUES (3, 'eve')")).toBe("no-user-writes");
  });

  it("sees a view created earlier in the session (e.g. in an open transaction)", async () => {
    const s = open([NO_USER_WRITES, NO_PASSWORDS], new FakeCatalog({ relations: USERS }));
    expect(await outcome(s, "BEGIN")).toBe("allow");
    expect(await outcome(s, "CREATE VIEW v12 AS SELECT id, name FROM users")).toBe("allow");
    expect(await outcome(s, "INSERT INTO v12 VALUES (3, 'eve')")).toBe("no-user-writes");
    expect(await outcome(s, "SELECT * FROM v12")).toBe("allow");
    expect(await outcome(s, "CREATE VIEW v13 AS SELECT * FROM users WHERE false")).toBe("no-passwords");
  });

  it("follows a rename made earlier in the session", async () => {
    const views = { "public.users_v": [{ relation: { schema: "public", name: "users" }, column: "password", access: "read" as const }] };
    const readPasswords: RawPolicy = { name: "no-password-reads", match: { operations: ["select"], columns: ["users.password"] }, action: "deny" };
    const s = open([NO_USER_WRITES, readPasswords], new FakeCatalog({ relations: USERS, views }));
    expect(await outcome(s, "ALTER VIEW users_v RENAME TO innocent")).toBe("allow");
    expect(await outcome(s, "SELECT * FROM innocent")).toBe("no-password-reads");
    expect(await outcome(s, "INSERT INTO innocent VALUES (3)")).toBe("no-user-writes");
  });
});

describe("the role/database search_path default", () => {
  const VAULT: RawPolicy = { name: "no-vault", match: { relations: ["secret.vault"] }, action: "deny" };

  it("resolves bare names through the learned default", async () => {
    for (const pathMode of ["sync", "async"] as const) {
      const catalog = new FakeCatalog({ searchPath: ["$user", "public", "secret"], pathMode });
      const s = open([VAULT], catalog);
      expect(await outcome(s, "SELECT * FROM vault")).toBe("no-vault");
      expect(await outcome(s, "SELECT * FROM public.vault")).toBe("allow");
      expect(catalog.pathCalls).toBe(1);
    }
  });

  it("doesn't widen without it", async () => {
    const s = open([VAULT], new FakeCatalog({ searchPath: ["$user", "public"] }));
    expect(await outcome(s, "SELECT * FROM vault")).toBe("allow");
  });

  it("is conservative when it can't be learned: a bare name may be in any schema a policy names", async () => {
    for (const pathMode of ["reject", "throw"] as const) {
      const s = open([VAULT], new FakeCatalog({ pathMode }));
      expect(await outcome(s, "SELECT * FROM vault")).toBe("no-vault");
      expect(await outcome(s, "SELECT * FROM orders")).toBe("allow");
    }
  });

  it("is not looked up when no guard matches names", () => {
    const catalog = new FakeCatalog();
    open([{ name: "no-drop", match: { operations: ["drop"] }, action: "deny" }], catalog);
    expect(catalog.pathCalls).toBe(0);
  });
});
