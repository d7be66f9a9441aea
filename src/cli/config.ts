// `vine config validate | init`.

import { defineCommand } from "citty";
import { existsSync, writeFileSync } from "node:fs";
import { configTemplate, loadConfig } from "../config/index.ts";
import { parseIPv4 } from "../overlay/prefix.ts";
import { DEFAULT_STATE_DIR } from "../state/db.ts";
import { checkFormat, fail, formatArg, printJson } from "./common.ts";

const validate = defineCommand({
  meta: { name: "validate", description: "Check a config: every problem at once, with file, line and key" },
  args: { config: { type: "string", alias: "c", description: "config file", default: "/etc/libvine/vine.toml" }, ...formatArg },
  run({ args }) {
    const format = checkFormat(args.format);
    const { config, problems, warnings } = loadConfig(String(args.config));
    const fmt = (p: { file: string; line: number; key: string; message: string }) => `${p.file}:${p.line}: ${p.key ? p.key + ": " : ""}${p.message}`;
    if (format === "json") {
      printJson({ ok: problems.length === 0, problems, warnings, summary: config ? { node: config.node.name, prefix: config.tun.prefix.text, peers: config.allowedPeers.length, bootstrap_peers: config.bootstrapPeers.length } : null });
    } else {
      for (const w of warnings) process.stderr.write(`warning: ${fmt(w)}\n`);
      for (const p of problems) process.stderr.write(`${fmt(p)}\n`);
      if (config) console.log(`${config.file}: ok — node ${config.node.name}, owns ${config.tun.prefix.text}, ${config.allowedPeers.length} allowed peer(s), ${config.bootstrapPeers.length} bootstrap peer(s)`);
      else process.stderr.write(`${problems.length} problem(s) in ${args.config}\n`);
    }
    if (problems.length > 0) process.exitCode = 1;
  },
});

const init = defineCommand({
  meta: { name: "init", description: "Write a commented config template for this host (mode 0600)" },
  args: {
    output: { type: "string", alias: "o", description: "file to write", default: "/etc/libvine/vine.toml" },
    name: { type: "string", description: "node name", default: "vine-host" },
    "network-id": { type: "string", description: "network id (the same on every host)", default: "home-net" },
    address: { type: "string", description: "overlay address/prefix_len this host owns", default: "10.42.0.1/24" },
    force: { type: "boolean", description: "overwrite an existing file" },
  },
  run({ args }) {
    const out = String(args.output);
    if (existsSync(out) && !args.force) fail(`${out} exists; use --force to overwrite it`);
    const [addr, len] = String(args.address).split("/");
    if (parseIPv4(addr ?? "") === null || !/^\d+$/.test(len ?? "")) fail(`--address must be a.b.c.d/len, not ${args.address}`);
    writeFileSync(out, configTemplate({ name: String(args.name), networkId: String(args["network-id"]), address: addr!, prefixLen: Number(len), stateDir: DEFAULT_STATE_DIR }), { mode: 0o600 });
    console.log(`wrote ${out}; edit it, then: vine config validate -c ${out}`);
  },
});

export const config = defineCommand({
  meta: { name: "config", description: "Validate and create configuration files" },
  subCommands: { validate, init },
});
