export { HttpPool } from "./http-pool.js";
export type { HttpPoolOptions } from "./options.js";
export type { RequestHandler } from "./server.js";
