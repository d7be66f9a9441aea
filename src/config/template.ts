// `vine config init`: a commented starting point for this host.

export function configTemplate(o: { name: string; networkId: string; address: string; prefixLen: number; stateDir: string }): string {
  return `# vine configuration for ${o.name}. Every key is documented in the book (configuration reference).
# Check it with: vine config validate -c <this file>

[node]
name = "${o.name}"
# Hosts join the same overlay only when their network_id matches (it keys the handshake).
network_id = "${o.networkId}"
state_dir = "${o.stateDir}"
listen_port = 4100

[tun]
name = "vine0"
# This host's overlay address; address/prefix_len is the prefix this host owns.
address = "${o.address}"
prefix_len = ${o.prefixLen}
mtu = 1420

# Peers that keep an endpoint registry and coordinate hole punching. Each must also be an allowed peer.
# [[bootstrap_peers]]
# peer_id = "vine1..."            # from \`vine identity show\` on that host
# address = "udp://203.0.113.10:4100"

# One block per peer this host accepts; \`vine identity export-public --format toml\` on the peer prints it.
# [[allowed_peers]]
# name = "beta"
# peer_id = "vine1..."
# prefix = "10.42.1.0/24"         # the one prefix that peer owns
# relay_capable = false           # true: this host may relay through it
# endpoint = "udp://198.51.100.7:4100"   # optional: a static endpoint (otherwise learned)
#
# A plain WireGuard peer (wireguard-go, kernel WireGuard) is listed by its key instead:
# [[allowed_peers]]
# name = "laptop"
# wireguard_key = "base64 X25519 public key"
# prefix = "10.42.9.0/24"
# endpoint = "udp://192.0.2.5:51820"

[policy]
strict_allowlist = true
allow_relay = true               # use relay-capable peers when no direct path works
allow_signaling_upgrade = true   # exchange endpoints through bootstrap peers and punch NATs
relay_service = false            # forward relay traffic for other admitted peers
`;
}
