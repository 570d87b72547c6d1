/**
 * `@tinycache/core/testing`: fakes for tests of code built on tinycache (and tinycache's
 * own): several nodes in one process, wired through a real ring with no network.
 */
export {
  type InMemoryCall,
  InMemoryNetwork,
  type InMemoryNetworkOptions,
} from "./memory-peers.js";
