// Package metrics renders carpd's status (the document of `carpd status
// --json` and ubus `carpd status`) in the Prometheus text exposition format
// 0.0.4, for node_exporter's textfile collector and OpenWrt's
// prometheus-node-exporter-lua (docs/metrics.md).
//
// It is pure: JSON bytes in, text out; no socket, no clock. It decodes the
// status into its own small structs, so it depends on no daemon type and
// reads a status of an older or newer carpd (a field it does not know is
// ignored, one it lacks is left out).
//
// The format: a family is a "# HELP name text" and a "# TYPE name type"
// line followed by its samples, "name{label="value",...} number", every
// sample of a family together. Label values escape \, " and newline as \\,
// \" and \n; HELP text escapes \ and newline. No sample carries a
// timestamp (the textfile collector refuses them); times are exported as
// gauges of Unix seconds (*_timestamp_seconds).
package metrics
