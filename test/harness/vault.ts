/**
 * A HashiCorp Vault API fake for the secret-reference tests (no Vault or OpenBao server can be
 * installed on these machines). It answers the endpoints Airlock calls the way Vault 1.x does
 * (documented at developer.hashicorp.com/vault/api-docs): KV v2 reads
 * (`GET /v1/MOUNT/data/PATH`, the `{ data: { data, metadata } }` envelope, 404 for a missing
 * secret, 403 `permission denied` for a bad token), AppRole and Kubernetes logins
 * (`POST /v1/auth/MOUNT/login`, 400 on bad credentials), and the namespace header.
 *
 * The database secrets engine (developer.hashicorp.com/vault/api-docs/secret/databases and
 * /api-docs/system/leases) really manages PostgreSQL users, as Vault's postgresql plugin does:
 * `GET /v1/MOUNT/creds/ROLE` runs the role's creation statements (`CREATE ROLE "{{name}}" WITH
 * LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'` …) on the configured server and
 * answers `{ lease_id: "MOUNT/creds/ROLE/ID", lease_duration, renewable, data: { username,
 * password } }`; `PUT /v1/sys/leases/renew` moves VALID UNTIL; `PUT /v1/sys/leases/revoke`
 * runs the revocation statements (DROP ROLE) and answers 204.
 *
 * The transit engine (developer.hashicorp.com/vault/api-docs/secret/transit), for keys created
 * with `transitKey`: `POST /v1/MOUNT/encrypt/NAME {plaintext: base64}` answers
 * `{data: {ciphertext: "vault:vN:base64", key_version}}` (AES-256-GCM96 under the key's latest
 * version), `POST /v1/MOUNT/decrypt/NAME {ciphertext}` answers `{data: {plaintext: base64}}`, or
 * 400 when the ciphertext does not open; `rotateTransitKey` adds a version (older ones still decrypt).
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import pg from "pg";

/** A database role of the fake's database engine: where users are created, and how. */
export interface FakeDbRole {
  /** The PostgreSQL server and a superuser login (the engine's connection config). */
  readonly connection: { readonly host: string; readonly port: number; readonly user: string; readonly password: string; readonly database: string };
  /** Statements with {{name}}, {{password}}, {{expiration}}; default CREATE ROLE … LOGIN … VALID UNTIL. */
  readonly creationStatements?: readonly string[];
  /** Default TTL of a lease, seconds. */
  readonly defaultTtl: number;
}

export interface FakeLease {
  readonly leaseId: string;
  readonly username: string;
  readonly password: string;
  renewals: number;
  revoked: boolean;
}

export interface FakeVault {
  readonly address: string;
  readonly roleId: string;
  readonly secretId: string;
  /** A static token that may read everything. */
  readonly rootToken: string;
  /** Set (or rotate) the KV v2 secret MOUNT/PATH. */
  set(mount: string, path: string, data: Record<string, string>): void;
  /** Revoke every token issued by login (the next read with one gets 403). */
  revokeLogins(): void;
  /** Requests seen, as "METHOD /path". */
  readonly requests: string[];
  /** Successful logins (AppRole or Kubernetes) so far. */
  readonly logins: number;
  /** Configure a database role at MOUNT/roles/ROLE. */
  databaseRole(mount: string, role: string, config: FakeDbRole): void;
  /** Every lease the database engine issued. */
  readonly leases: FakeLease[];
  /** Create the transit key MOUNT/NAME (version 1). */
  transitKey(mount: string, name: string): void;
  /** Add a version to a transit key (encrypt then uses it). */
  rotateTransitKey(mount: string, name: string): void;
  /** Transit encrypt/decrypt calls that succeeded. */
  readonly transitCalls: number;
  /** While true, transit answers 503 (Vault sealed or in standby). */
  transitDown: boolean;
  close(): Promise<void>;
}

export async function startFakeVault(options: { readonly namespace?: string; readonly k8sRole?: string; readonly k8sJwt?: string } = {}): Promise<FakeVault> {
  const roleId = `role-${randomBytes(6).toString("hex")}`;
  const secretId = `secret-${randomBytes(12).toString("hex")}`;
  const rootToken = `hvs.root${randomBytes(12).toString("hex")}`;
  const tokens = new Set<string>([rootToken]);
  const issued = new Set<string>();
  const kv = new Map<string, { data: Record<string, string>; version: number }>();
  const requests: string[] = [];
  let logins = 0;
  const dbRoles = new Map<string, FakeDbRole>();
  const leases: FakeLease[] = [];
  const leaseRole = new Map<string, FakeDbRole>();
  const transitKeys = new Map<string, Buffer[]>();
  let transitCalls = 0;
  const transit = (req: IncomingMessage, url: URL, body: Record<string, unknown>, res: ServerResponse): boolean => {
    const m = /^\/v1\/([^/]+)\/(encrypt|decrypt)\/([^/]+)$/.exec(url.pathname);
    if (m === null || req.method !== "POST") return false;
    const token = req.headers["x-vault-token"];
    if (typeof token !== "string" || !tokens.has(token)) {
      json(res, 403, { errors: ["permission denied"] });
      return true;
    }
    if (fake.transitDown) {
      json(res, 503, { errors: ["Vault is sealed"] });
      return true;
    }
    const versions = transitKeys.get(`${m[1] ?? ""}/${m[3] ?? ""}`);
    if (versions === undefined) {
      json(res, 400, { errors: ["encryption key not found"] });
      return true;
    }
    if (m[2] === "encrypt") {
      const plaintext = body["plaintext"];
      if (typeof plaintext !== "string") {
        json(res, 400, { errors: ["missing plaintext to encrypt"] });
        return true;
      }
      const version = versions.length;
      const iv = randomBytes(12);
      const c = createCipheriv("aes-256-gcm", versions[version - 1] ?? Buffer.alloc(32), iv);
      const ct = Buffer.concat([c.update(Buffer.from(plaintext, "base64")), c.final(), c.getAuthTag()]);
      transitCalls++;
      json(res, 200, { request_id: randomBytes(8).toString("hex"), lease_id: "", renewable: false, lease_duration: 0, data: { ciphertext: `vault:v${version}:${Buffer.concat([iv, ct]).toString("base64")}`, key_version: version }, wrap_info: null, warnings: null, auth: null });
      return true;
    }
    const cm = /^vault:v(\d+):([A-Za-z0-9+/=]+)$/.exec(typeof body["ciphertext"] === "string" ? body["ciphertext"] : "");
    const key = cm === null ? undefined : versions[Number(cm[1]) - 1];
    if (cm === null || key === undefined) {
      json(res, 400, { errors: ["invalid ciphertext: no prefix"] });
      return true;
    }
    const raw = Buffer.from(cm[2] ?? "", "base64");
    try {
      const d = createDecipheriv("aes-256-gcm", key, raw.subarray(0, 12));
      d.setAuthTag(raw.subarray(raw.length - 16));
      const plain = Buffer.concat([d.update(raw.subarray(12, raw.length - 16)), d.final()]);
      transitCalls++;
      json(res, 200, { request_id: randomBytes(8).toString("hex"), lease_id: "", renewable: false, lease_duration: 0, data: { plaintext: plain.toString("base64") }, wrap_info: null, warnings: null, auth: null });
    } catch {
      json(res, 400, { errors: ["cipher: message authentication failed"] });
    }
    return true;
  };
  const runSql = async (role: FakeDbRole, statements: readonly string[]): Promise<void> => {
    const c = new pg.Client(role.connection);
    await c.connect();
    try {
      for (const st of statements) await c.query(st);
    } finally {
      await c.end();
    }
  };
  const expiration = (ttl: number): string => new Date(Date.now() + ttl * 1000).toISOString();
  const ident = (s: string): string => `"${s.replace(/"/g, '""')}"`;
  const database = async (req: IncomingMessage, url: URL, body: Record<string, unknown>, res: ServerResponse): Promise<boolean> => {
    const creds = /^\/v1\/([^/]+)\/creds\/([^/]+)$/.exec(url.pathname);
    const isLeaseOp = url.pathname === "/v1/sys/leases/renew" || url.pathname === "/v1/sys/leases/revoke";
    if (creds === null && !isLeaseOp) return false;
    const token = req.headers["x-vault-token"];
    if (typeof token !== "string" || !tokens.has(token)) {
      json(res, 403, { errors: ["permission denied"] });
      return true;
    }
    if (creds !== null && req.method === "GET") {
      const role = dbRoles.get(`${creds[1] ?? ""}/${creds[2] ?? ""}`);
      if (role === undefined) {
        json(res, 400, { errors: [`unknown role: ${creds[2] ?? ""}`] });
        return true;
      }
      // Vault's default username template: v-{{display_name}}-{{role}}-{{random 20}}-{{unix_time}}, truncated to 63.
      const username = `v-approle-${creds[2] ?? ""}-${randomBytes(10).toString("hex")}-${Math.floor(Date.now() / 1000)}`.slice(0, 63);
      const password = `A1a-${randomBytes(15).toString("base64url")}`;
      const statements = (role.creationStatements ?? [`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'`]).map((st) =>
        st.replaceAll("{{name}}", username).replaceAll("{{password}}", password).replaceAll("{{expiration}}", expiration(role.defaultTtl)),
      );
      try {
        await runSql(role, statements);
      } catch {
        json(res, 500, { errors: ["1 error occurred: failed to create user"] });
        return true;
      }
      const leaseId = `${creds[1] ?? ""}/creds/${creds[2] ?? ""}/${randomBytes(12).toString("base64url")}`;
      leases.push({ leaseId, username, password, renewals: 0, revoked: false });
      leaseRole.set(leaseId, role);
      json(res, 200, { request_id: randomBytes(8).toString("hex"), lease_id: leaseId, renewable: true, lease_duration: role.defaultTtl, data: { username, password }, wrap_info: null, warnings: null, auth: null });
      return true;
    }
    if (isLeaseOp && req.method === "PUT") {
      const leaseId = body["lease_id"];
      const lease = leases.find((l) => l.leaseId === leaseId);
      const role = typeof leaseId === "string" ? leaseRole.get(leaseId) : undefined;
      if (lease === undefined || role === undefined || lease.revoked) {
        json(res, 400, { errors: ["lease not found"] });
        return true;
      }
      if (url.pathname === "/v1/sys/leases/renew") {
        const increment = typeof body["increment"] === "number" ? body["increment"] : role.defaultTtl;
        await runSql(role, [`ALTER ROLE ${ident(lease.username)} VALID UNTIL '${expiration(increment)}'`]);
        lease.renewals++;
        json(res, 200, { request_id: randomBytes(8).toString("hex"), lease_id: lease.leaseId, renewable: true, lease_duration: increment, data: null, wrap_info: null, warnings: null, auth: null });
        return true;
      }
      // Revocation statements of Vault's postgresql plugin: revoke its privileges, then drop it.
      await runSql(role, [`REVOKE ALL PRIVILEGES ON ALL TABLES IN SCHEMA public FROM ${ident(lease.username)}`, `DROP ROLE IF EXISTS ${ident(lease.username)}`]);
      lease.revoked = true;
      res.writeHead(204).end();
      return true;
    }
    json(res, 405, { errors: [] });
    return true;
  };

  const json = (res: ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
  };
  const login = (res: ServerResponse): void => {
    logins++;
    const token = `hvs.${randomBytes(16).toString("hex")}`;
    tokens.add(token);
    issued.add(token);
    json(res, 200, { request_id: randomBytes(8).toString("hex"), lease_id: "", renewable: false, lease_duration: 0, data: null, wrap_info: null, warnings: null, auth: { client_token: token, accessor: randomBytes(8).toString("hex"), policies: ["default", "airlock"], token_policies: ["default", "airlock"], metadata: {}, lease_duration: 3600, renewable: true, entity_id: "", token_type: "service", orphan: true } });
  };

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const url = new URL(req.url ?? "/", "http://vault");
      requests.push(`${req.method ?? ""} ${url.pathname}`);
      if (options.namespace !== undefined && req.headers["x-vault-namespace"] !== options.namespace) {
        json(res, 403, { errors: ["permission denied"] });
        return;
      }
      const body = chunks.length === 0 ? {} : (JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>);
      if (transit(req, url, body, res)) return;
      void database(req, url, body, res).then((handled) => {
        if (!handled) kvAndLogin(url, body);
      });
    });
    const kvAndLogin = (url: URL, body: Record<string, unknown>): void => {
      if (req.method === "POST" && url.pathname === "/v1/auth/approle/login") {
        if (body["role_id"] === roleId && body["secret_id"] === secretId) login(res);
        else json(res, 400, { errors: ["invalid role or secret ID"] });
        return;
      }
      if (req.method === "POST" && url.pathname === "/v1/auth/kubernetes/login") {
        if (options.k8sRole !== undefined && body["role"] === options.k8sRole && body["jwt"] === options.k8sJwt) login(res);
        else json(res, 400, { errors: ["invalid role name or service account token"] });
        return;
      }
      const m = /^\/v1\/([^/]+)\/data\/(.+)$/.exec(url.pathname);
      if (req.method === "GET" && m !== null) {
        const token = req.headers["x-vault-token"];
        if (typeof token !== "string" || !tokens.has(token)) {
          json(res, 403, { errors: ["permission denied"] });
          return;
        }
        const entry = kv.get(`${decodeURIComponent(m[1] ?? "")}/${decodeURIComponent(m[2] ?? "")}`);
        if (entry === undefined) {
          json(res, 404, { errors: [] });
          return;
        }
        json(res, 200, {
          request_id: randomBytes(8).toString("hex"),
          lease_id: "",
          renewable: false,
          lease_duration: 0,
          data: { data: entry.data, metadata: { created_time: new Date().toISOString(), custom_metadata: null, deletion_time: "", destroyed: false, version: entry.version } },
          wrap_info: null,
          warnings: null,
          auth: null,
        });
        return;
      }
      json(res, 404, { errors: [] });
    };
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const a = server.address();
  const port = typeof a === "object" && a !== null ? a.port : 0;
  const fake: FakeVault = {
    address: `http://127.0.0.1:${port}`,
    transitDown: false,
    roleId,
    secretId,
    rootToken,
    set(mount, path, data) {
      const prev = kv.get(`${mount}/${path}`);
      kv.set(`${mount}/${path}`, { data, version: (prev?.version ?? 0) + 1 });
    },
    revokeLogins() {
      for (const t of issued) tokens.delete(t);
      issued.clear();
    },
    requests,
    get logins() {
      return logins;
    },
    databaseRole(mount, role, config) {
      dbRoles.set(`${mount}/${role}`, config);
    },
    leases,
    transitKey(mount, name) {
      transitKeys.set(`${mount}/${name}`, [randomBytes(32)]);
    },
    rotateTransitKey(mount, name) {
      transitKeys.get(`${mount}/${name}`)?.push(randomBytes(32));
    },
    get transitCalls() {
      return transitCalls;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  return fake;
}
