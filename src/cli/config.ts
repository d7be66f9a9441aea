// `vine config validate | init`.

import { defineCommand } from "citty";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { configTemplate, formatProblem, loadConfig, validateConfig } from "../config/index.ts";
import { parseIPv4 } from "../overlay/prefix.ts";
import { DEFAULT_STATE_DIR } from "../state/db.ts";
import { checkFormat, fail, formatArg, printJson } from "./common.ts";

const validate = defineCommand({
  meta: { name: "validate", description: "Check a config: every problem at once, with file, line and key" },
  args: { config: { type: "string", alias: "c", description: "config file", default: "/etc/libvine/vine.toml" }, ...formatArg },
  run({ args }) {
    const format = checkFormat(args.format);
    const { config, problems, warnings } = loadConfig(String(args.config));
    const fmt = formatProblem;
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
    if (parseIPv4(addr ?? "") === null || !/^\d+$/.test(len ?? "") || Number(len) < 1 || Number(len) > 32) fail(`--address must be a host address with a prefix length, like 10.42.0.1/24, not ${args.address}`);
    const dir = dirname(out);
    if (!existsSync(dir)) fail(`directory ${dir} does not exist: create it first (mkdir -p ${dir})`);
    writeFileSync(out, configTemplate({ name: String(args.name), networkId: String(args["network-id"]), address: addr!, prefixLen: Number(len), stateDir: DEFAULT_STATE_DIR }), { mode: 0o600 });
    chmodSync(out, 0o600); // writeFileSync's mode applies only to a new file
    const check = validateConfig(out, readFileSync(out, "utf8"));
    if (check.problems.length > 0) fail(`the template for ${args.address} does not validate: ${check.problems[0]!.message}`);
    console.log(`wrote ${out}; edit it, then: vine config validate -c ${out}`);
  },
});

export const config = defineCommand({
  meta: { name: "config", description: "Validate and create configuration files" },
  subCommands: { validate, init },
});
