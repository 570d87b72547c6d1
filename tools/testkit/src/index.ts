export * from "./bench.ts";
export * from "./cluster.ts";
export * from "./cluster-node.ts";
export * from "./deferred.ts";
export * from "./http.ts";
export * from "./pack.ts";
export * from "./proc.ts";
export * from "./random.ts";
