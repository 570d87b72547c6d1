/**
 * `@tinycache/discovery`: where a tinycache node learns its peers. Each export is a
 * `PeerSource` for `followPeers` (from `@tinycache/core`), which owns the rules (batching,
 * refusing empty lists, logging, counting); a source only reads and reports.
 */
export { type DnsSourceOptions, dnsSource } from "./dns.js";
export { type FileSourceOptions, fileSource } from "./file.js";
export { staticSource } from "./static.js";
