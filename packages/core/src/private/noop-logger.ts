import type { Logger } from "../peers.js";

const noop = (): void => {};

/** The default logger: libraries never write to the console. Stateless, shared safely. */
export const NOOP_LOGGER: Logger = Object.freeze({
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
});
