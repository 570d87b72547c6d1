export type { DoOptions, SharedResult, Work } from "./singleflight.js";
export { SingleFlight } from "./singleflight.js";
