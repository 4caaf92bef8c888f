// Package luciview tests the LuCI views of luci-app-carpd
// (package/luci-app-carpd/htdocs/luci-static/resources/view/carpd) in
// headless Chromium. It has no code of its own, only tests.
//
// The views are LuCI client-side modules ('require view', form, rpc, poll,
// ui; docs/ubus-protocol.md#rpcd-and-luci). testdata/luci-shim.js stands in
// for the subset of luci-base they use, testdata/harness.html loads a view
// the way LuCI does and plays a scenario (clicks, typing, Save), and a Go
// HTTP server on loopback serves both and answers /ubus like uhttpd-mod-ubus
// (docs/ubus-protocol.md#rpcd-and-luci): `carpd status` from
// testdata/status.json, the control methods, and rpcd's uci object from
// testdata/uci-carpd.json. Every call is recorded, so the test checks what
// the page sent as well as what it showed.
//
// testdata/luci-shim.js follows LuCI's real behaviour where the views
// depend on it: E() sets a lone string child as markup (dom.append), a
// section's tabs are an Array indexed by name (form.js tab()). Its
// TestRealLuCI loads the views into the JavaScript of a real LuCI checkout
// instead (testdata/real-luci.html does what LuCI's view.ut and a theme's
// header do), when CARPD_LUCI_SRC names one; LuCI's code is never part of
// this repository.
//
// Environment:
//
//	CARPD_LUCI_SRC          a LuCI checkout (modules/luci-base/htdocs/...) for TestRealLuCI; skipped when unset
//	CARPD_CHROMIUM          the browser to use (default: chromium, chromium-browser or google-chrome on PATH)
//	CARPD_REQUIRE_NETNS=1   fail instead of skipping when there is no browser (CI)
//	CARPD_UPDATE_SCREENSHOTS=1  also write docs/luci-status.png and docs/luci-config.png
//
// or go test ./internal/luciview -update-screenshots.
package luciview
