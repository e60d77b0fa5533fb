import { describe, expect, it } from "vitest";
import { httpSketch, kubeSketch } from "./check-request.js";
import { prefixed } from "./gateway/aggregate.js";

describe("check_policy request sketches", () => {
  it("an HTTP call becomes the request relative to the connection, with its JSON body", () => {
    const s = httpSketch("api", { method: "POST", path: "/v1/pay", query: { a: "1" }, json: { amount: 5 } });
    expect(s).toMatchObject({ method: "POST", target: "/v1/pay?a=1", headers: { "content-type": "application/json" } });
    expect("body" in s && s.body.toString()).toBe('{"amount":5}');
    expect(httpSketch("api", { path: "http://evil/x" })).toHaveProperty("error");
    expect(httpSketch("api", {})).toHaveProperty("error");
  });

  it("kubectl's verbs become kubectl's requests", () => {
    expect(kubeSketch({ verb: "delete", resource: "configmaps", namespace: "prod", name: "x" })).toMatchObject({ method: "DELETE", target: "/api/v1/namespaces/prod/configmaps/x" });
    expect(kubeSketch({ verb: "list", resource: "deployments" })).toMatchObject({ method: "GET", target: "/apis/apps/v1/namespaces/default/deployments" });
    expect(kubeSketch({ verb: "logs", name: "web-1" })).toMatchObject({ target: "/api/v1/namespaces/default/pods/web-1/log" });
    const exec = kubeSketch({ verb: "exec", name: "web-1", command: ["sh", "-c", "ls /"] });
    expect(exec).toMatchObject({ upgrade: "websocket" });
    expect("target" in exec && exec.target).toBe("/api/v1/namespaces/default/pods/web-1/exec?command=sh&command=-c&command=ls+%2F&stdout=true&stderr=true");
    expect(kubeSketch({ verb: "exec", name: "web-1" })).toHaveProperty("error");
    expect(kubeSketch({ verb: "get", resource: "pods" })).toHaveProperty("error");
    expect(kubeSketch({ verb: "get", resource: "pods", name: "../secrets" })).toHaveProperty("error");
  });

  it("aggregated tool names are valid MCP tool names or left out", () => {
    expect(prefixed("files", "read_file")).toBe("files__read_file");
    expect(prefixed("files", "x".repeat(60))).toBeUndefined();
    expect(prefixed("files", "has space")).toBeUndefined();
  });
});
