package lab

// FirewallRuleset is the stateful nftables firewall of the two-router sync
// lab (the state-sync issue's): forward policy drop, established/related
// accepted, invalid dropped, new flows only from the LAN and for TCP only as
// a SYN, and LAN->WAN source NAT to the WAN VIP 10.0.2.1 (masquerade would
// pick each router's own address and break failover). Interfaces are named
// lan and wan. The e2e sync tests and bench/sync load it with `nft -f`.
const FirewallRuleset = `
flush ruleset
table inet fw {
	chain forward {
		type filter hook forward priority 0; policy drop;
		ct state established,related accept
		ct state invalid drop
		iifname "lan" oifname "wan" tcp flags & (syn | ack | fin | rst) == syn ct state new accept
		iifname "lan" oifname "wan" meta l4proto udp ct state new accept
		iifname "lan" oifname "wan" meta l4proto icmp ct state new accept
	}
}
table ip nat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "wan" snat to 10.0.2.1
	}
}
`
