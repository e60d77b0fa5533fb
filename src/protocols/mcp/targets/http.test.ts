import { describe, expect, it } from "vitest";
import { kubePath, pluralOf } from "../kube-tool.js";
import { requestHeaders, requestTarget } from "./http.js";

describe("http_request arguments", () => {
  it("builds the listener path from connection, path and query", () => {
    expect(requestTarget({ connection: "api", path: "/v1/users", query: { a: "1", b: ["x", "y z"] } })).toBe("/api/v1/users?a=1&b=x&b=y+z");
    expect(requestTarget({ connection: "api", path: "/x?keep=1", query: { a: "2" } })).toBe("/api/x?keep=1&a=2");
  });

  it("refuses paths that are not relative to the connection or carry control characters", () => {
    for (const path of ["http://evil/x", "//evil/x", "x", "/a b", "/a\r\nHost: evil", "/a#frag"]) expect(requestTarget({ connection: "api", path })).toHaveProperty("error");
  });

  it("drops the agent's Authorization and hop-by-hop headers; refuses malformed ones", () => {
    const r = requestHeaders({ Authorization: "Bearer x", "Proxy-Authorization": "y", Connection: "close", Host: "evil", "X-Ok": "1" });
    expect(r).toEqual({ ok: true, headers: { "x-ok": "1" } });
    expect(requestHeaders({ "bad name": "1" }).ok).toBe(false);
    expect(requestHeaders({ "x-a": "v\r\nInjected: 1" }).ok).toBe(false);
  });
});

describe("kubernetes paths", () => {
  it("core, grouped and cluster-scoped resources", () => {
    expect(kubePath({ resource: "pods", name: "web-1" })).toBe("/api/v1/namespaces/default/pods/web-1");
    expect(kubePath({ resource: "deployments", namespace: "prod" })).toBe("/apis/apps/v1/namespaces/prod/deployments");
    expect(kubePath({ resource: "namespaces", name: "prod" })).toBe("/api/v1/namespaces/prod");
    expect(kubePath({ resource: "widgets", apiVersion: "example.com/v1alpha1" })).toBe("/apis/example.com/v1alpha1/namespaces/default/widgets");
  });

  it("refuses names that would walk the path", () => {
    expect(kubePath({ resource: "pods", name: "../secrets/db" })).toHaveProperty("error");
    expect(kubePath({ resource: "pods/../secrets" })).toHaveProperty("error");
    expect(kubePath({ resource: "pods", apiVersion: "../v1" })).toHaveProperty("error");
  });

  it("plural of a kind", () => {
    expect(pluralOf("ConfigMap")).toBe("configmaps");
    expect(pluralOf("Ingress")).toBe("ingresses");
    expect(pluralOf("NetworkPolicy")).toBe("networkpolicies");
  });
});
