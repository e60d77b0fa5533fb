import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { GatewayError } from "../../core/errors.js";
import { classifyK8sRequest, describeK8sRequest, execOptions, resourceNames, type K8sRequest } from "./request.js";

function res(method: string, path: string, query = ""): Extract<K8sRequest, { type: "resource" }> {
  const r = classifyK8sRequest(method, path, query);
  if (r.type !== "resource") throw new Error(`expected a resource request for ${path}`);
  return r;
}

function refused(method: string, path: string, query = ""): GatewayError {
  try {
    classifyK8sRequest(method, path, query);
  } catch (e) {
    if (e instanceof GatewayError) return e;
    throw e;
  }
  throw new Error(`${method} ${path}?${query} was not refused`);
}

describe("classifyK8sRequest: the apiserver's RequestInfo rules", () => {
  it.each([
    ["GET", "/api/v1/namespaces/default/pods", "", { verb: "list", resource: "pods", namespace: "default", name: "", apiGroup: "", apiVersion: "v1" }],
    ["GET", "/api/v1/namespaces/default/pods/web-1", "", { verb: "get", resource: "pods", namespace: "default", name: "web-1" }],
    ["GET", "/api/v1/pods", "", { verb: "list", resource: "pods", namespace: "" }],
    ["GET", "/api/v1/namespaces/default/pods", "watch=true", { verb: "watch", resource: "pods" }],
    ["GET", "/api/v1/namespaces/default/pods", "watch=1", { verb: "watch" }],
    ["GET", "/api/v1/namespaces/default/pods", "watch=false", { verb: "list" }],
    ["GET", "/api/v1/watch/namespaces/default/pods", "", { verb: "watch", resource: "pods", namespace: "default" }],
    ["GET", "/apis/apps/v1/namespaces/prod/deployments/api", "", { verb: "get", apiGroup: "apps", apiVersion: "v1", resource: "deployments", name: "api" }],
    ["POST", "/apis/apps/v1/namespaces/prod/deployments", "", { verb: "create", resource: "deployments", namespace: "prod" }],
    ["PUT", "/apis/apps/v1/namespaces/prod/deployments/api/scale", "", { verb: "update", subresource: "scale", name: "api" }],
    ["PATCH", "/api/v1/namespaces/prod/pods/p/status", "", { verb: "patch", subresource: "status" }],
    ["DELETE", "/api/v1/namespaces/prod", "", { verb: "delete", resource: "namespaces", name: "prod", namespace: "prod" }],
    ["DELETE", "/api/v1/namespaces/prod/pods", "", { verb: "deletecollection", resource: "pods", namespace: "prod" }],
    ["DELETE", "/api/v1/namespaces", "", { verb: "deletecollection", resource: "namespaces" }],
    ["PUT", "/api/v1/namespaces/prod/finalize", "", { verb: "update", resource: "namespaces", name: "prod", subresource: "finalize" }],
    ["GET", "/api/v1/namespaces/prod/pods/p/exec", "command=sh", { verb: "exec", rbacVerb: "get", subresource: "exec", name: "p" }],
    ["POST", "/api/v1/namespaces/prod/pods/p/exec", "command=sh", { verb: "exec", rbacVerb: "create" }],
    ["POST", "/api/v1/namespaces/prod/pods/p/attach", "", { verb: "attach" }],
    ["POST", "/api/v1/namespaces/prod/pods/p/portforward", "", { verb: "portforward" }],
    ["GET", "/api/v1/namespaces/prod/pods/p/log", "follow=true", { verb: "logs", subresource: "log" }],
    ["GET", "/api/v1/namespaces/prod/services/web:80/proxy/admin/x", "", { verb: "proxy", name: "web:80", subresource: "proxy", rest: ["admin", "x"] }],
    ["GET", "/api/v1/proxy/namespaces/prod/pods/p/some/path", "", { verb: "proxy", rbacVerb: "proxy", subresource: "", name: "p", rest: ["some", "path"] }],
    ["GET", "/api/v1/nodes/n1/proxy/metrics", "", { verb: "proxy", resource: "nodes", name: "n1" }],
    ["GET", "/api/v1/namespaces/prod/secrets", "fieldSelector=metadata.name%3Ddb", { verb: "list", name: "db" }],
    ["GET", "/api/v1/namespaces/prod/secrets/", "", { verb: "list", resource: "secrets" }],
    ["GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles/system:admin", "", { apiGroup: "rbac.authorization.k8s.io", name: "system:admin" }],
  ])("%s %s?%s", (method, path, query, want) => {
    expect(res(method, path, query)).toMatchObject(want);
  });

  it.each([
    ["/api"],
    ["/apis"],
    ["/api/v1"],
    ["/apis/apps"],
    ["/apis/apps/v1"],
    ["/version"],
    ["/openapi/v3"],
    ["/openapi/v3/api/v1"],
    ["/healthz"],
  ])("non-resource: %s", (path) => {
    expect(classifyK8sRequest("GET", path, "")).toMatchObject({ type: "nonresource", verb: "get" });
  });

  it.each([
    ["GET", "/api/v1/namespaces/prod/../kube-system/secrets"],
    ["GET", "/api/v1/namespaces/prod/%2e%2e/secrets"],
    ["GET", "/api/v1/namespaces/prod/secrets/%2Fx"],
    ["GET", "/api/v1/namespaces%2Fprod/secrets"],
    ["GET", "/api/v1/namespaces/prod/secrets/%252e%252e"],
    ["GET", "/api/v1//secrets"],
    ["GET", "/api/v1/./secrets"],
    ["GET", "/api/v1/Secrets"],
    ["GET", "/API/v1/secrets"],
    ["GET", "/apis/Apps/v1/deployments"],
    ["GET", "/api/v1/namespaces/prod/secrets/a\\b"],
    ["GET", "/api/v1/namespaces/prod/secrets/%00"],
    ["GET", "/api/v1/namespaces/prod/secrets/%zz"],
    ["get", "/api/v1/pods"],
    ["OPTIONS", "/api/v1/pods"],
    ["GET", "/api/v1/namespaces/prod/pods/p/exec/extra"],
    ["POST", "/api/v1/namespaces/prod/pods//exec"],
    ["GET", "/api/v1/watch"],
    ["GET", "api/v1/pods"],
  ])("refused: %s %s", (method, path) => {
    expect(refused(method, path).code).toMatch(/GW_PROTOCOL|GW_LIMIT/);
  });

  it("bounds the path and the query", () => {
    expect(refused("GET", "/api/v1/pods/" + "a".repeat(5000)).code).toBe("GW_PROTOCOL");
    expect(refused("GET", "/api/v1/pods", "x=" + "a".repeat(20000)).code).toBe("GW_LIMIT");
    expect(refused("GET", "/" + Array.from({ length: 70 }, () => "a").join("/")).code).toBe("GW_PROTOCOL");
  });

  it("refuses a second fieldSelector (the apiserver reads one)", () => {
    expect(refused("GET", "/api/v1/secrets", "fieldSelector=metadata.name%3Da&fieldSelector=metadata.name%3Db").code).toBe("GW_PROTOCOL");
  });

  it("names resources as policies write them", () => {
    expect(resourceNames(res("GET", "/apis/apps/v1/namespaces/x/deployments/d/scale"))).toEqual(["deployments", "apps/deployments", "deployments/scale", "apps/deployments/scale"]);
    expect(resourceNames(res("GET", "/api/v1/namespaces/x/pods/p/log"))).toEqual(["pods", "pods/log"]);
    expect(describeK8sRequest(res("DELETE", "/api/v1/namespaces/prod"))).toBe("delete namespaces prod -n prod");
  });

  it("reads exec options as the apiserver does (repeated command)", () => {
    expect(execOptions("command=sh&command=-c&command=echo%20hi&stdin=true&tty=1&container=c")).toEqual({
      command: ["sh", "-c", "echo hi"],
      container: "c",
      stdin: true,
      stdout: false,
      stderr: false,
      tty: true,
    });
  });
});

describe("classifyK8sRequest: properties", () => {
  const seg = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,9}[a-z0-9])?$/);
  const anyText = fc.string({ maxLength: 200 });

  it("never throws anything but a GatewayError, whatever the input", () => {
    fc.assert(
      fc.property(fc.constantFrom("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "get", "TRACE"), anyText, anyText, (m, p, q) => {
        try {
          classifyK8sRequest(m, "/" + p, q);
        } catch (e) {
          expect(e).toBeInstanceOf(GatewayError);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it("the forwarded path classifies the same (normalization is idempotent)", () => {
    fc.assert(
      fc.property(fc.constantFrom("GET", "POST", "DELETE", "PATCH"), fc.array(fc.oneof(seg, fc.constantFrom("namespaces", "api", "apis", "v1", "watch", "proxy", "exec", "a%3Ab", "x y")), { maxLength: 8 }), (m, segs) => {
        let r: K8sRequest;
        try {
          r = classifyK8sRequest(m, "/" + segs.join("/"), "");
        } catch {
          return;
        }
        expect(classifyK8sRequest(m, r.path, "")).toEqual(r);
      }),
      { numRuns: 3000 },
    );
  });

  it("a namespaced resource request reports its namespace, resource and name", () => {
    fc.assert(
      fc.property(seg, seg, seg, (ns, resource, name) => {
        fc.pre(!["namespaces", "watch", "proxy"].includes(resource));
        const r = res("GET", `/api/v1/namespaces/${ns}/${resource}/${name}`);
        expect(r).toMatchObject({ namespace: ns, resource, name, verb: "get" });
      }),
    );
  });

  it("an encoded dot segment or slash anywhere is refused", () => {
    fc.assert(
      fc.property(fc.array(seg, { minLength: 1, maxLength: 6 }), fc.nat(), fc.constantFrom("%2e%2e", "%2E%2E", "..", ".", "%2F", "%2f", "a%2Fb", "%252e"), (segs, at, evil) => {
        const i = at % (segs.length + 1);
        const parts = ["api", "v1", ...segs.slice(0, i), evil, ...segs.slice(i)];
        expect(() => classifyK8sRequest("GET", "/" + parts.join("/"), "")).toThrow(GatewayError);
      }),
    );
  });
});
