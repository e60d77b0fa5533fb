/**
 * A HashiCorp Vault API fake for the secret-reference tests (no Vault or OpenBao server can be
 * installed on these machines). It answers the endpoints Airlock calls the way Vault 1.x does
 * (documented at developer.hashicorp.com/vault/api-docs): KV v2 reads
 * (`GET /v1/MOUNT/data/PATH`, the `{ data: { data, metadata } }` envelope, 404 for a missing
 * secret, 403 `permission denied` for a bad token), AppRole and Kubernetes logins
 * (`POST /v1/auth/MOUNT/login`, 400 on bad credentials), and the namespace header.
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";

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
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const a = server.address();
  const port = typeof a === "object" && a !== null ? a.port : 0;
  return {
    address: `http://127.0.0.1:${port}`,
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
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
