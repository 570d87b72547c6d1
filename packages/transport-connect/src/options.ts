import type { SecureClientSessionOptions } from "node:http2";
import {
  type PeerPoolOptions,
  type ResolvedPoolOptions,
  resolvePoolOptions,
} from "@tinycache/core/transport";

/**
 * The protocol the client speaks to its peers. The server always serves all three.
 * - `"connect"`: the Connect protocol, binary (application/proto), unary POST.
 * - `"grpc"`: gRPC over HTTP/2 (httpVersion must be "2").
 * - `"grpcweb"`: gRPC-Web, binary.
 */
export type PeerProtocol = "connect" | "grpc" | "grpcweb";

/**
 * Options of {@link ConnectPool}: core's pool options (`maxBodyBytes` is the largest
 * message either side reads or writes: a server answers `resource_exhausted` beyond, the
 * client fails as `unavailable`) plus Connect's own.
 */
export interface ConnectPoolOptions extends PeerPoolOptions {
  /**
   * Protocol of the client side. The server answers all three on one port.
   * @default "connect" (measured fastest: see the README)
   */
  protocol?: PeerProtocol;
  /**
   * HTTP version of the client side. `"grpc"` needs `"2"` (chosen automatically when
   * left out).
   * @default "1.1" for connect and grpcweb, "2" for grpc
   */
  httpVersion?: "1.1" | "2";
  /**
   * HTTP/2 client: options of `http2.connect` for each peer's session (TLS options such
   * as `ca` for `https:` peers go here).
   */
  http2Options?: SecureClientSessionOptions;
}

/** Options after defaults and checks. */
export interface ResolvedOptions extends ResolvedPoolOptions {
  protocol: PeerProtocol;
  httpVersion: "1.1" | "2";
  http2Options: SecureClientSessionOptions | undefined;
}

const OWNER = "ConnectPool";

export function resolveOptions(o: ConnectPoolOptions): ResolvedOptions {
  const common = resolvePoolOptions(OWNER, o);
  const protocol = o.protocol ?? "connect";
  if (protocol !== "connect" && protocol !== "grpc" && protocol !== "grpcweb") {
    throw new TypeError(
      `ConnectPool: protocol must be "connect", "grpc" or "grpcweb", got ${String(protocol)}`,
    );
  }
  const httpVersion = o.httpVersion ?? (protocol === "grpc" ? "2" : "1.1");
  if (httpVersion !== "1.1" && httpVersion !== "2") {
    throw new TypeError(
      `ConnectPool: httpVersion must be "1.1" or "2", got ${String(httpVersion)}`,
    );
  }
  if (protocol === "grpc" && httpVersion !== "2") {
    throw new TypeError('ConnectPool: the gRPC protocol needs httpVersion "2"');
  }
  return {
    ...common,
    protocol,
    httpVersion,
    http2Options: o.http2Options,
  };
}
