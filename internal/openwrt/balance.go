package openwrt

import "github.com/carpd/carpd/internal/config"

// nodes maps `list node 'vhid:advskew'`, reporting each bad item at its
// line.
func (m *mapper) nodes(s *Section, o *Option) []config.Node {
	var out []config.Node
	for i, v := range o.Values {
		n, err := config.ParseNode(v)
		if err != nil {
			m.errorf(s, o, o.ValueLines[i], "%v", err)
			continue
		}
		out = append(out, n)
	}
	return out
}

// balancedVHID finishes a vhid section with `list node`: the nodes replace
// option vhid and advskew (either beside them is an error, at its line),
// and until the daemon runs every node it warns that only the leader runs.
func (m *mapper) balancedVHID(s *Section, v *config.VHID, nodes []config.Node) {
	if s.Option("node") == nil {
		return
	}
	for _, name := range []string{"vhid", "advskew"} {
		if o := s.Option(name); o != nil {
			m.errorf(s, o, o.Line, "list node replaces option vhid and advskew: give each node as vhid:advskew")
		}
	}
	v.SetNodes(nodes)
}
