/**
 * The composition root: config → wiring → listeners. Everything long-lived is created here,
 * explicitly (no registration by import side effects), and closed here in reverse order:
 * stop accepting, drain sessions, flush recordings, then close the audit log and the store.
 */
import { mkdir } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import type { Logger } from "pino";
import { createApiServer, type ApiServer } from "../api/server.js";
import { loadOrCreateKey } from "../audit/key.js";
import { verifyAudit } from "../audit/verify.js";
import { createAuditExporter } from "../audit/export/setup.js";
import { AUDIT_FILE_NAME, LocalAuditLog } from "../audit/log.js";
import type { PostgresConnection } from "../core/connection.js";
import { SessionAdmission } from "../protocols/common/admission.js";
import { FeatureEvaluator } from "../policy/features.js";
import type { ProtocolEngine } from "../core/engine.js";
import { GatewayError } from "../core/errors.js";
import { writeAdminToken } from "../identity/admin.js";
import { ApprovalNotifier } from "../approvals/notify.js";
import { ApprovalService } from "../approvals/service.js";
import { TokenService, blockedPrincipalOf } from "../identity/tokens.js";
import { Authenticator } from "../identity/authenticator.js";
import { TrustedIssuers } from "../identity/issuers.js";
import { PersonRechecks, stillAdmitted } from "../identity/recheck.js";
import { withApproverGroups } from "../identity/roles.js";
import { createLogger } from "../observability/logger.js";
import { GatewayMetrics } from "../observability/metrics.js";
import { AccessEvaluator } from "../policy/access.js";
import { PolicyEvaluator } from "../policy/policies.js";
import { K8sPolicyEvaluator } from "../policy/kubernetes-policies.js";
import { HttpPolicyEvaluator } from "../policy/http-policies.js";
import { HttpEngine } from "../protocols/http/engine.js";
import { setExecCastPath } from "../protocols/kubernetes/exec.js";
import { kubernetesKind } from "../protocols/kubernetes/kind.js";
import type { HttpServedKind } from "../core/http-kind.js";
import { RedisPolicyEvaluator } from "../policy/redis-policies.js";
import { SshPolicyEvaluator } from "../policy/ssh-policies.js";
import { RedisEngine } from "../protocols/redis/engine.js";
import { MysqlEngine } from "../protocols/mysql/engine.js";
import { castPathOf, createSshEngine } from "../protocols/ssh/setup.js";
import { readCast } from "../recording/asciicast.js";
import { ClassificationCache, initSqlParser, ParserPool } from "../policy/sql/index.js";
import { Pipeline } from "../policy/pipeline.js";
import { SessionRegistry } from "../policy/registry.js";
import { PostgresEngine } from "../protocols/postgres/engine.js";
import { FileRecordingStore } from "../recording/file-store.js";
import type { RecordingStore } from "../recording/types.js";
import { secretResolver } from "../secrets/resolve.js";
import { vaultClient } from "../secrets/setup.js";
import { openStore } from "../store/index.js";
import type { Store } from "../store/types.js";
import type { Config, ListenAddress } from "./config.js";
import { Catalogs } from "./catalogs.js";
import { DirectDialer } from "./dialer.js";
import { createMaskerFactory, detectorNames } from "./maskers.js";
import { loadListenerTls, type ListenerTls } from "./tls.js";
import { LoopbackCorrelations } from "../protocols/mcp/correlation.js";
import { mcpServiceDeps } from "./mcp.js";
import { mcpGatewayService } from "./mcp-gateway.js";
import { McpPolicyEvaluator } from "../policy/mcp-policies.js";
import { ConsoleSessions } from "../api/console-session.js";
import { policyViews, principalFinder, tryIt } from "./console.js";
import { LiveConnections } from "./live-connections.js";
import { SecretBox } from "../secrets/secret-box.js";

export interface RunningGateway {
  readonly config: Config;
  readonly logger: Logger;
  readonly addresses: { readonly api?: ListenAddress; readonly postgres?: ListenAddress; readonly ssh?: ListenAddress; readonly redis?: ListenAddress; readonly mysql?: ListenAddress; readonly http?: ListenAddress };
  readonly store: Store;
  readonly tokens: TokenService;
  readonly registry: SessionRegistry;
  readonly audit: LocalAuditLog;
  readonly recordings: RecordingStore;
  readonly metrics: GatewayMetrics;
  readonly adminToken: string;
  readonly tls: ListenerTls | undefined;
  readonly approvals: ApprovalService;
  /** The control-plane API, when `listen.api` is set (route audits in tests). */
  readonly api: ApiServer | undefined;
  /** A fresh one-time admin login link for the web console (the demo prints one); undefined without an API listener. */
  consoleLoginLink(): string | undefined;
  close(): Promise<void>;
}

export interface StartGatewayOptions {
  readonly logger?: Logger;
}

/** One protocol listener: its config address (off when absent) and how its engine is made. */
interface EngineSpec {
  readonly key: "postgres" | "ssh" | "redis" | "mysql" | "http";
  /** For messages: "PostgreSQL", "SSH". */
  readonly what: string;
  readonly address: ListenAddress | undefined;
  readonly create: () => Promise<ProtocolEngine>;
}

interface Listener {
  readonly server: Server;
  readonly sockets: Set<Socket>;
  readonly address: ListenAddress;
}

function listen(addr: ListenAddress, onSocket: (s: Socket) => void, what: string): Promise<Listener> {
  const sockets = new Set<Socket>();
  const server = createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    onSocket(socket);
  });
  return new Promise((resolve, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) => {
      const why = e.code === "EADDRINUSE" ? "the address is already in use" : e.code === "EACCES" ? "permission denied" : e.message;
      reject(new GatewayError("GW_CONFIG", `cannot listen for ${what} on ${addr.host}:${addr.port}: ${why}`, { cause: e }));
    });
    server.listen(addr.port, addr.host, 511, () => {
      const a = server.address();
      const port = a !== null && typeof a === "object" ? a.port : addr.port;
      resolve({ server, sockets, address: { host: addr.host, port } });
    });
  });
}

function closeListener(l: Listener): Promise<void> {
  return new Promise((resolve) => l.server.close(() => resolve()));
}

export async function startGateway(config: Config, options: StartGatewayOptions = {}): Promise<RunningGateway> {
  const logger = options.logger ?? createLogger({ level: config.log.level });
  const cleanups: (() => Promise<void>)[] = [];
  const cleanup = async (): Promise<void> => {
    for (const c of cleanups.reverse()) await c().catch((e: unknown) => logger.error({ err: e }, "error while closing"));
  };
  try {
    // Statements not cached yet are parsed in parser threads, bounded (issue 12: a statement must
    // not be a way to stall or break the parser of every session). Started first, so that their
    // WASM compiles while the store opens; awaited before the cache below.
    const parsers = new ParserPool({
      limits: { maxBytes: config.limits.sqlMaxBytes, maxDepth: config.limits.sqlMaxDepth },
      timeoutMs: config.limits.sqlParseTimeout,
    });
    cleanups.push(() => parsers.close());
    await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
    const keysDir = join(config.dataDir, "keys");
    await mkdir(keysDir, { recursive: true, mode: 0o700 });
    // Secret references beyond env:/file: (issue 20): every component resolves through this one
    // resolver, at each use (a target login resolves again, so a rotated secret is picked up).
    const vault = config.secrets.vault === undefined ? undefined : await vaultClient(config.secrets.vault, config.secrets.refreshInterval);
    if (vault !== undefined) cleanups.push(() => Promise.resolve(vault.close()));
    const resolveSecret = secretResolver(vault === undefined ? {} : { vault });

    const storeUrl = config.store.url === undefined ? undefined : await resolveSecret(config.store.url);
    const store = await openStore({
      dataDir: config.dataDir,
      ...(storeUrl === undefined ? {} : { url: storeUrl }),
      ...(config.store.embedded === undefined ? {} : { embedded: config.store.embedded }),
      logger,
    });
    cleanups.push(() => store.close());
    // Before the audit log continues the chain from the store's head: a second gateway on the
    // same store would continue it too, and the two chains would fork.
    await store.claimWriter?.();

    const auditKey = await loadOrCreateKey(join(keysDir, "audit.key"));
    const auditDir = join(config.dataDir, "audit");
    // Export follows the store; it closes after the audit log has shipped its last records there.
    const exporter = await createAuditExporter(config.audit, { store, dir: join(auditDir, "sinks"), resolveSecret, logger });
    cleanups.push(() => exporter.close());
    const audit = await LocalAuditLog.open({ dir: auditDir, key: auditKey, store, fsync: config.audit.fsync, logger });
    cleanups.push(() => audit.close());
    await exporter.start();

    const recordings = new FileRecordingStore({ dataDir: config.dataDir, logger });
    cleanups.push(() => recordings.close());

    const tokens = await TokenService.open({
      keyDir: keysDir,
      store,
      serviceAccounts: config.serviceAccounts,
      defaultTtlMs: config.tokens.defaultTtl,
      maxTtlMs: config.tokens.maxTtl,
      logger,
    });
    cleanups.push(() => tokens.close());

    const metrics = new GatewayMetrics();
    cleanups.push(() => metrics.close());

    const registry = new SessionRegistry();
    // One authenticator for every engine and the API: Airlock tokens, then trusted issuers' JWTs.
    const authenticator = new Authenticator({ tokens, issuers: new TrustedIssuers({ issuers: config.oidc, logger, serviceAccount: (name) => tokens.serviceAccount(name) }) });
    tokens.onRevoke((blockId) => {
      // A principal block (POST /v1/principals/:id/revoke, here or on a gateway sharing the store).
      const principalId = blockedPrincipalOf(blockId);
      if (principalId === undefined) return;
      const n = registry.terminate({ principalId }, "revoked", "the principal was revoked");
      if (n > 0) logger.info({ principalId, sessions: n }, "ended sessions of a revoked principal");
    });
    tokens.onRevoke((tokenId) => {
      const n = registry.terminate({ tokenId }, "revoked", "the access token was revoked");
      if (n > 0) logger.info({ tokenId, sessions: n }, "ended sessions of a revoked token");
    });

    // Guardrails and masking: the real PostgreSQL parser (WASM), loaded once.
    await initSqlParser();
    for (const p of config.policies) detectorNames({ rule: p.name, detectors: p.detectors ?? [] });
    const maskKey = await loadOrCreateKey(join(keysDir, "mask.key"));
    const maskerFor = createMaskerFactory(maskKey);
    await parsers.ready();
    const classifications = new ClassificationCache(undefined, undefined, parsers);
    const dialer = new DirectDialer();
    const catalogs = new Catalogs(
      config.connections.filter((c): c is PostgresConnection => c.type === "postgres"),
      { dialer, resolveSecret, timeoutMs: config.limits.connectTimeout, maxMessageBytes: config.limits.maxMessageBytes },
      logger,
    );
    cleanups.push(() => catalogs.close());

    // Just-in-time approvals and access grants (src/approvals); requests persist in the store.
    const approvalStore = store.approvals;
    if (approvalStore === undefined) throw new GatewayError("GW_CONFIG", "this store does not keep approval requests");
    const notifier = new ApprovalNotifier({
      webhooks: config.approvals.webhooks,
      ...(config.approvals.email === undefined ? {} : { email: config.approvals.email }),
      ...(config.approvals.publicUrl === undefined ? {} : { publicUrl: config.approvals.publicUrl }),
      store: approvalStore,
      resolveSecret,
      logger,
    });
    const approvals = new ApprovalService({
      store: approvalStore,
      audit,
      notifier,
      logger,
      liveSessions: registry,
      connections: config.connections.map((c) => c.name),
      ...(config.approvals.grants === undefined ? {} : { grants: config.approvals.grants }),
      ...(config.approvals.publicUrl === undefined ? {} : { publicUrl: config.approvals.publicUrl }),
    });
    await approvals.start();
    cleanups.push(async () => {
      await approvals.close();
      notifier.close();
    });
    // People's groups, asked again at their issuer after a browser login (src/identity/recheck.ts).
    const connectionGroups = new Map(config.connections.map((c) => [c.name, c.groups]));
    const policyGroups = new Set(config.policies.flatMap((p) => p.groups ?? []));
    const rechecks = new PersonRechecks({
      liveSessions: registry,
      admits: (s, groups) =>
        stillAdmitted(s, groups, {
          connectionGroups: (name) => connectionGroups.get(name) ?? [],
          policyGroups,
          hasGrant: (principalId, connection) => approvals.activeGrant(principalId, connection) !== undefined,
        }),
      tokens,
      audit: (input) => audit.append(input),
      logger,
    });
    tokens.onRevoke((tokenId) => rechecks.untrack(tokenId));
    cleanups.push(() => rechecks.close());
    // The effective connections: the configuration's plus those registered in the web console.
    const liveConnections = new LiveConnections({ config, file: join(config.dataDir, "console-connections.json"), box: SecretBox.open(join(keysDir, "secrets.key")), logger });
    const evaluators = [
      new AccessEvaluator(liveConnections.map),
      new PolicyEvaluator(config.policies, liveConnections.map, classifications, catalogs.viewResolver()),
      new SshPolicyEvaluator(config.policies),
      new RedisPolicyEvaluator(config.policies),
      new K8sPolicyEvaluator(config.policies),
      new HttpPolicyEvaluator(config.policies),
      new McpPolicyEvaluator(config.policies, liveConnections.map),
      new FeatureEvaluator(),
    ];
    const pipeline = new Pipeline({
      evaluators,
      audit,
      recordings,
      store,
      registry,
      metrics,
      logger,
      endSessionsAtExpiry: config.tokens.endSessionsAtExpiry,
      approvals,
    });

    const tls = await loadListenerTls(config.tls, config.dataDir, resolveSecret);
    const engines: ProtocolEngine[] = [];
    const listeners: Listener[] = [];
    const addresses: { api?: ListenAddress; postgres?: ListenAddress; ssh?: ListenAddress; redis?: ListenAddress; mysql?: ListenAddress; http?: ListenAddress } = {};
    // Target kinds served over the HTTP listener besides plain HTTP APIs (core/http-kind.ts).
    setExecCastPath((id) => castPathOf(recordings.pathOf(id).dir, id));
    const httpKinds: HttpServedKind[] = [kubernetesKind()];
    let httpEngine: HttpEngine | undefined;

    // Stop accepting first, then end live sessions, then wait for engines to drain. A listener's
    // close completes only once its last connection has gone, so it is awaited last: awaiting it
    // first would wait for clients (idle, or waiting for an approval) that nothing ends.
    cleanups.push(async () => {
      const closed = listeners.map(closeListener);
      registry.terminateAll("shutdown", "the gateway is shutting down");
      await Promise.all(engines.map((e) => e.close()));
      for (const l of listeners) for (const s of l.sockets) s.destroy();
      await Promise.all(closed);
    });

    // One admission step for every engine: credentials, connection, session judgement, audit.
    // The MCP server's loopback sessions are admitted like any client's, and marked as MCP's.
    const correlations = new LoopbackCorrelations();
    const gatekeeper = new SessionAdmission({
      pipeline,
      connections: liveConnections.map,
      authenticate: authenticator.authenticate,
      logger,
      correlate: (address, principalId) => correlations.lookup(address, principalId),
    });
    let sshHostKey: string | undefined;
    // The engines, as a list: adding a protocol is its folder plus one entry here.
    const engineSpecs: readonly EngineSpec[] = [
      {
        key: "postgres",
        what: "PostgreSQL",
        address: config.listen.postgres,
        create: () =>
          Promise.resolve(
            new PostgresEngine({
              gatekeeper,
              dialer,
              resolveSecret,
              ...(tls === undefined ? {} : { tls: { context: tls.context, require: tls.require } }),
              maxMessageBytes: config.limits.maxMessageBytes,
              connectTimeoutMs: config.limits.connectTimeout,
              authTimeoutMs: config.limits.authTimeout,
              maxUnauthenticated: config.limits.maxUnauthenticated,
              maxUnauthenticatedPerAddress: config.limits.maxUnauthenticatedPerAddress,
              maxRowsPerStatement: config.recording.maxRowsPerStatement,
              maxValueBytes: config.recording.maxValueBytes,
              logger,
              maskerFor,
              catalogFor: (c) => catalogs.for(c),
            }),
          ),
      },
      {
        key: "ssh",
        what: "SSH",
        address: config.listen.ssh,
        create: async () => {
          const { engine, hostPublicKey } = await createSshEngine({
            dataDir: config.dataDir,
            hostKey: config.ssh.hostKey,
            serviceAccounts: config.serviceAccounts,
            isBlocked: (id) => tokens.isBlocked(id),
            gatekeeper,
            dialer,
            resolveSecret,
            connectTimeoutMs: config.limits.connectTimeout,
            authTimeoutMs: config.limits.authTimeout,
            maxUnauthenticated: config.limits.maxUnauthenticated,
            maxUnauthenticatedPerAddress: config.limits.maxUnauthenticatedPerAddress,
            logger,
            maskerFor,
            recordingDir: (id) => recordings.pathOf(id).dir,
          });
          logger.info({ hostKey: hostPublicKey }, "SSH listener host key (pin it in clients' known_hosts)");
          sshHostKey = hostPublicKey;
          return engine;
        },
      },
      {
        key: "redis",
        what: "Redis",
        address: config.listen.redis,
        create: () =>
          Promise.resolve(
            new RedisEngine({
              gatekeeper,
              dialer,
              resolveSecret,
              connectionsFor: (principal) => config.connections.filter((c) => c.type === "redis" && c.groups.some((g) => principal.groups.includes(g))).map((c) => c.name),
              maxMessageBytes: config.limits.maxMessageBytes,
              connectTimeoutMs: config.limits.connectTimeout,
              authTimeoutMs: config.limits.authTimeout,
              maxUnauthenticated: config.limits.maxUnauthenticated,
              maxUnauthenticatedPerAddress: config.limits.maxUnauthenticatedPerAddress,
              maxRecordedBytes: config.recording.maxValueBytes,
              logger,
              maskerFor,
            }),
          ),
      },
      {
        key: "mysql",
        what: "MySQL",
        address: config.listen.mysql,
        create: () =>
          Promise.resolve(
            new MysqlEngine({
              gatekeeper,
              dialer,
              resolveSecret,
              ...(tls === undefined ? {} : { tls: { context: tls.context, require: tls.require } }),
              maxMessageBytes: config.limits.maxMessageBytes,
              connectTimeoutMs: config.limits.connectTimeout,
              authTimeoutMs: config.limits.authTimeout,
              maxUnauthenticated: config.limits.maxUnauthenticated,
              maxUnauthenticatedPerAddress: config.limits.maxUnauthenticatedPerAddress,
              maxRowsPerStatement: config.recording.maxRowsPerStatement,
              maxValueBytes: config.recording.maxValueBytes,
              logger,
              maskerFor,
              connectionsFor: (principal) => config.connections.filter((c) => c.type === "mysql" && c.groups.some((g) => principal.groups.includes(g))).map((c) => c.name),
            }),
          ),
      },
      {
        key: "http",
        what: "HTTP",
        address: config.listen.http,
        create: () => {
          httpEngine = new HttpEngine({
            gatekeeper,
            resolveSecret,
            connections: config.connections,
            kinds: httpKinds,
            ...(tls === undefined ? {} : { tls: { context: tls.context, require: tls.require } }),
            maxInspectBytes: Math.min(config.limits.maxMessageBytes, 1_048_576),
            connectTimeoutMs: config.limits.connectTimeout,
            maxRecordedBytes: config.recording.maxValueBytes,
            logger,
            maskerFor,
          });
          return Promise.resolve(httpEngine);
        },
      },
    ];
    for (const spec of engineSpecs) {
      if (spec.address === undefined) continue;
      const engine = await spec.create();
      engines.push(engine);
      const l = await listen(spec.address, (s) => void engine.handle(s), spec.what);
      listeners.push(l);
      addresses[spec.key] = l.address;
    }
    // HTTP connections with a listener of their own (`port:`), on listen.http's host.
    const ownPorts = httpEngine === undefined || config.listen.http === undefined ? [] : config.connections.flatMap((c) => (c.type === "http" && c.port !== undefined ? [c] : []));
    for (const c of ownPorts) {
      if (httpEngine === undefined || config.listen.http === undefined || c.port === undefined) continue;
      const serve = httpEngine.handleFor(c.name);
      listeners.push(await listen({ host: config.listen.http.host, port: c.port }, (s) => void serve(s), `HTTP (${c.name})`));
    }

    const adminToken = await writeAdminToken(config.dataDir);

    let api: ApiServer | undefined;
    // The approver role: `roles.approver` plus every group named as approvers (identity/roles.ts).
    const roles = withApproverGroups(config.roles, [
      ...config.policies.flatMap((p) => p.approvers ?? []),
      ...(config.approvals.grants?.approvers ?? []),
    ]);
    // The web console's browser sessions (src/api/console-session.ts).
    const consoleSessions = new ConsoleSessions({ authenticate: authenticator.authenticate });
    if (config.listen.api !== undefined) {
      api = await createApiServer({
        console: {
          sessions: consoleSessions,
          store,
          recordings,
          readCast: (id) => readCast(castPathOf(recordings.pathOf(id).dir, id)),
          liveSessions: registry,
          approvals,
          authenticate: authenticator.authenticate,
          roles,
          origins: config.login.publicUrl === undefined ? [] : [new URL(config.login.publicUrl).origin],
          oidcLogin: config.oidc.some((o) => o.clientId !== undefined),
          serviceAccounts: () => config.serviceAccounts,
          connections: () => liveConnections.views(),
          liveConnections: {
            register: (body, by) => liveConnections.register(body, by),
            setDisabled: (name, disabled, by) => liveConnections.setDisabled(name, disabled, by),
          },
          auditLog: audit,
          policies: () => policyViews(config),
          flushAudit: () => audit.flush(),
          tryIt: (input) => tryIt({ connections: () => [...liveConnections.map.values()], evaluators, principal: principalFinder(config) }, input),
          logger,
        },
        store,
        tokens,
        recordings,
        ssh: { readCast: (id) => readCast(castPathOf(recordings.pathOf(id).dir, id)) },
        audit: {
          verify: async () => {
            // The local log and the store anchor each other's newest record, so records
            // deleted from the tail of either are detected too.
            await audit.flush();
            return verifyAudit({ store, key: auditKey, filePath: join(auditDir, AUDIT_FILE_NAME) });
          },
        },
        auditLog: audit,
        liveSessions: registry,
        approvals: {
          approvals,
          deliveries: (id) => approvalStore.listDeliveries(id),
          ...(config.approvals.publicUrl === undefined ? {} : { publicUrl: config.approvals.publicUrl }),
        },
        authenticate: authenticator.authenticate,
        roles,
        identity: {
          tokens,
          authenticator,
          oidc: config.oidc,
          login: config.login,
          ...(config.saml === undefined ? {} : { saml: config.saml }),
          roles,
          liveSessions: registry,
          rechecks,
          auditLog: audit,
          resolveSecret,
          logger,
        },
        adminToken,
        metrics,
        logger,
        mcp: mcpServiceDeps({ config, addresses, tls, sshHostKey, correlations, pipeline, approvals }),
        mcpGateway: {
          service: mcpGatewayService({
            connections: liveConnections.map,
            gatekeeper,
            pipeline,
            store,
            audit: async (input) => {
              await audit.append(input);
            },
            approvals,
            resolveSecret,
            maskerFor,
            timeoutMs: config.limits.connectTimeout,
            logger,
          }),
          ...(config.approvals.publicUrl === undefined ? {} : { publicUrl: config.approvals.publicUrl }),
        },
      });
      const server = api;
      addresses.api = await server.listen(config.listen.api.host, config.listen.api.port).catch((e: unknown) => {
        const code = (e as NodeJS.ErrnoException).code;
        throw new GatewayError(
          "GW_CONFIG",
          `cannot listen for the API on ${config.listen.api?.host ?? ""}:${config.listen.api?.port ?? ""}: ${code === "EADDRINUSE" ? "the address is already in use" : String(code)}`,
          { cause: e },
        );
      });
      // Close the API before the data path so nothing new starts during shutdown.
      cleanups.push(() => server.close());
    }

    await audit.append({ type: "gateway.start", details: { connections: config.connections.length } });
    logger.info({ addresses, store: store.kind, tls: tls?.source ?? "off" }, "gateway started");

    let closed: Promise<void> | undefined;
    return {
      config,
      logger,
      addresses,
      store,
      tokens,
      registry,
      audit,
      recordings,
      metrics,
      adminToken,
      tls,
      approvals,
      api,
      consoleLoginLink: () => {
        const a = addresses.api;
        if (a === undefined) return undefined;
        const host = a.host.includes(":") ? `[${a.host}]` : a.host;
        const base = config.login.publicUrl?.replace(/\/$/, "") ?? `http://${host}:${a.port}`;
        return `${base}/v1/console/login/link/${consoleSessions.createLink()}`;
      },
      close: () => {
        closed ??= (async () => {
          await audit.append({ type: "gateway.stop" }).catch(() => undefined);
          await cleanup();
        })();
        return closed;
      },
    };
  } catch (e) {
    await cleanup();
    throw e;
  }
}
