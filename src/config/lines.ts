// Where keys are in a TOML file. smol-toml gives values but not positions, so this scans the source:
// table headers ([node], [[allowed_peers]] counted per array) and `key =` lines, mapping a key path
// such as "allowed_peers[2].prefix" to its line. Good enough for the files vine reads (no multi-line
// keys); when a key is absent the table's header line is the best place to point at.

export class LineMap {
  private readonly lines = new Map<string, number>();

  constructor(source: string) {
    let table = "";
    const arrayCounts = new Map<string, number>();
    source.split(/\r?\n/).forEach((raw, i) => {
      const line = i + 1;
      const text = raw.replace(/^\s+/, "");
      if (text.startsWith("#") || text === "") return;
      let m = /^\[\[\s*([A-Za-z0-9_.-]+)\s*\]\]/.exec(text);
      if (m) {
        const n = arrayCounts.get(m[1]!) ?? 0;
        arrayCounts.set(m[1]!, n + 1);
        table = `${m[1]}[${n}]`;
        this.set(table, line);
        return;
      }
      m = /^\[\s*([A-Za-z0-9_.-]+)\s*\]/.exec(text);
      if (m) {
        table = m[1]!;
        this.set(table, line);
        return;
      }
      m = /^("?)([A-Za-z0-9_.-]+)\1\s*=/.exec(text);
      if (m) {
        // a dotted key (mtu.x = 1) also places each of its parents (tun.mtu) on this line
        const parts = m[2]!.split(".");
        for (let n = 1; n <= parts.length; n++) {
          const k = parts.slice(0, n).join(".");
          this.set(table ? `${table}.${k}` : k, line);
        }
      }
    });
  }

  private set(path: string, line: number): void {
    if (!this.lines.has(path)) this.lines.set(path, line);
  }

  /** The line of `path`, else of its closest enclosing table, else 1. */
  lineOf(path: string): number {
    let p = path;
    for (;;) {
      const l = this.lines.get(p);
      if (l !== undefined) return l;
      // allowed_peers[0] of an inline array (allowed_peers = [{...}]) is where allowed_peers is
      const idx = /\[\d+\]$/.exec(p);
      if (idx) {
        p = p.slice(0, idx.index);
        continue;
      }
      const dot = p.lastIndexOf(".");
      if (dot < 0) return 1;
      p = p.slice(0, dot);
    }
  }
}
