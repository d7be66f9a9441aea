export { loadConfig, validateConfig, parseEndpoint, formatProblem, type LoadResult } from "./load.ts";
export type { VineConfig, AllowedPeer, BootstrapPeer, Endpoint, Problem, Prefix } from "./schema.ts";
export { KEYS } from "./schema.ts";
export { configTemplate } from "./template.ts";
