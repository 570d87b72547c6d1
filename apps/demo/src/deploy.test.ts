/**
 * deploy/ cannot be applied on these machines (no Docker engine, no cluster), so this test
 * checks what can drift silently: that the Dockerfile and the Kubernetes manifests agree
 * with each other and with the node's own `--help` (flags, ports, probes, labels, RBAC).
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { parsePeerSpec } from "./cli.js";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const nodeJs = fileURLToPath(new URL("../dist/node.js", import.meta.url));

// biome-ignore lint/suspicious/noExplicitAny: manifests are untyped YAML
type Doc = any;

const docs: Doc[] = parseAllDocuments(
  readFileSync(`${root}deploy/kubernetes/tinycache.yaml`, "utf8"),
).map((d) => d.toJS());
const byKind = (kind: string): Doc[] => docs.filter((d) => d?.kind === kind);
const one = (kind: string, name?: string): Doc => {
  const found = byKind(kind).filter((d) => name === undefined || d.metadata?.name === name);
  expect(found, `${kind} ${name ?? ""}`).toHaveLength(1);
  return found[0];
};
const dockerfile = readFileSync(`${root}deploy/Dockerfile`, "utf8");

let help = "";
beforeAll(async () => {
  help = (await promisify(execFile)(process.execPath, [nodeJs, "--help"])).stdout;
});

/** The value after `flag` in an argument list. */
function flagValue(args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i < 0 ? undefined : args[i + 1];
}

/** `$(VAR)` as Kubernetes expands it in args, with sample values. */
function expand(arg: string): string {
  return arg.replace("$(POD_IP)", "10.1.2.3").replace("$(POD_NAMESPACE)", "default");
}

describe("deploy/kubernetes/tinycache.yaml", () => {
  const deployment = one("Deployment", "tinycache");
  const pod = deployment.spec.template.spec;
  const container = pod.containers[0];
  const args: string[] = container.args;
  const containerPort = (name: string): number =>
    container.ports.find((p: Doc) => p.name === name)?.containerPort;

  it("every flag in the container's args is one the node knows (its --help)", () => {
    const flags = args.filter((a) => a.startsWith("--"));
    expect(flags.length).toBeGreaterThan(3);
    for (const f of flags) expect(help, `${f} in --help`).toContain(`  ${f}`);
  });

  it("ports agree: --port and --api-port are the named container ports the Services target", () => {
    expect(Number(flagValue(args, "--port"))).toBe(containerPort("peer"));
    expect(Number(flagValue(args, "--api-port"))).toBe(containerPort("api"));
    expect(args).toContain("--api");
    const peer = one("Service", "tinycache");
    expect(peer.spec.clusterIP).toBe("None"); // headless: one endpoint per pod
    expect(peer.spec.ports[0].targetPort).toBe("peer");
    expect(peer.spec.ports[0].port).toBe(containerPort("peer"));
    const api = one("Service", "tinycache-api");
    expect(api.spec.ports[0].targetPort).toBe("api");
  });

  it("--peers follows this Service through the Kubernetes source, --self is the pod's URL on it", () => {
    const spec = parsePeerSpec("peers", expand(flagValue(args, "--peers") as string));
    expect(spec).toEqual({
      kind: "k8s",
      namespace: "default",
      service: one("Service", "tinycache").metadata.name,
      port: containerPort("peer"),
    });
    expect(expand(flagValue(args, "--self") as string)).toBe(
      `http://10.1.2.3:${containerPort("peer")}`,
    );
    const env = Object.fromEntries(
      container.env
        .filter((e: Doc) => e.valueFrom?.fieldRef !== undefined)
        .map((e: Doc) => [e.name, e.valueFrom.fieldRef.fieldPath]),
    );
    expect(env).toEqual({ POD_IP: "status.podIP", POD_NAMESPACE: "metadata.namespace" });
    expect(flagValue(args, "--host")).toBe("0.0.0.0");
  });

  it("binds 0.0.0.0 with the peer secret from a Secret, never --insecure nor a literal", () => {
    expect(flagValue(args, "--host")).toBe("0.0.0.0");
    expect(args).not.toContain("--insecure");
    expect(args).not.toContain("--secret");
    const secretEnv = container.env.find((e: Doc) => e.name === "TINYCACHE_SECRET");
    expect(secretEnv?.value).toBeUndefined();
    expect(secretEnv?.valueFrom?.secretKeyRef).toEqual({ name: "tinycache-peer", key: "secret" });
    // The variable is the one the node reads (its --help says so).
    expect(help).toContain("TINYCACHE_SECRET");
    // The Secret itself is created by hand, not committed here.
    expect(byKind("Secret")).toHaveLength(0);
  });

  it("probes ask /healthz on the peer port, which every node serves", () => {
    for (const probe of [container.readinessProbe, container.livenessProbe]) {
      expect(probe.httpGet.path).toBe("/healthz");
      expect(probe.httpGet.port).toBe("peer");
    }
    expect(help).toContain("/healthz");
  });

  it("labels and selectors agree", () => {
    const labels = deployment.spec.template.metadata.labels;
    expect(deployment.spec.selector.matchLabels).toEqual(labels);
    for (const s of byKind("Service")) {
      for (const [k, v] of Object.entries(s.spec.selector)) expect(labels[k]).toBe(v);
    }
  });

  it("RBAC: the pod's ServiceAccount may get, list and watch EndpointSlices, nothing more", () => {
    const sa = one("ServiceAccount");
    expect(pod.serviceAccountName).toBe(sa.metadata.name);
    const role = one("Role");
    expect(role.rules).toEqual([
      {
        apiGroups: ["discovery.k8s.io"],
        resources: ["endpointslices"],
        verbs: ["get", "list", "watch"],
      },
    ]);
    const binding = one("RoleBinding");
    expect(binding.roleRef).toMatchObject({ kind: "Role", name: role.metadata.name });
    expect(binding.subjects).toEqual([{ kind: "ServiceAccount", name: sa.metadata.name }]);
  });

  it("never root, and no ConfigMap", () => {
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
    expect(byKind("ConfigMap")).toHaveLength(0);
    expect(container.volumeMounts.map((m: Doc) => m.mountPath)).toContain(
      flagValue(args, "--data-dir"),
    );
  });
});

describe("deploy/Dockerfile", () => {
  const instructions = dockerfile
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));
  const last = (name: string): string =>
    instructions
      .filter((l) => l.startsWith(`${name} `))
      .at(-1)
      ?.slice(name.length + 1) ?? "";

  it("is multi-stage and runs as a non-root user", () => {
    expect(instructions.filter((l) => l.startsWith("FROM ")).length).toBeGreaterThanOrEqual(2);
    expect(last("USER")).not.toMatch(/^(root|0)$/);
    expect(last("USER")).not.toBe("");
  });

  it("runs node itself as PID 1 (exec form, no shell to swallow SIGTERM)", () => {
    expect(JSON.parse(last("ENTRYPOINT"))).toEqual(["node", "dist/node.js"]);
  });

  it("CMD binds 0.0.0.0 without --insecure: a container needs TINYCACHE_SECRET to start", () => {
    const cmd: string[] = JSON.parse(last("CMD"));
    expect(flagValue(cmd, "--host")).toBe("0.0.0.0");
    expect(cmd).not.toContain("--insecure");
    expect(dockerfile).toContain("TINYCACHE_SECRET");
  });

  it("CMD flags exist, and the exposed ports, the health check and the manifests agree", () => {
    const cmd: string[] = JSON.parse(last("CMD"));
    for (const f of cmd.filter((a) => a.startsWith("--"))) expect(help).toContain(`  ${f}`);
    const port = Number(flagValue(cmd, "--port"));
    const exposed = last("EXPOSE").split(/\s+/).map(Number);
    expect(exposed).toContain(port);
    expect(exposed).toContain(9999);
    expect(last("HEALTHCHECK")).toContain(`127.0.0.1:${port}/healthz`);
    expect(flagValue(cmd, "--host")).toBe("0.0.0.0");
    const container = one("Deployment", "tinycache").spec.template.spec.containers[0];
    expect(container.ports.map((p: Doc) => p.containerPort).sort()).toEqual(exposed.sort());
  });

  it("installs the pnpm version the README pins", () => {
    const readme = readFileSync(`${root}README.md`, "utf8");
    const pinned = /npm install -g (pnpm@[\d.]+)/.exec(readme)?.[1];
    expect(pinned).toBeDefined();
    expect(dockerfile).toContain(`npm install -g ${pinned}`);
  });
});
