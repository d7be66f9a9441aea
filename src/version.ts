// The version printed by `vine --version` and recorded in snapshots.
export const VERSION = "0.1.0";
