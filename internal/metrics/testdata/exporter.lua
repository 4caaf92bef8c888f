-- A stand-in for prometheus-node-exporter-lua's side of the collector
-- interface, written from its documented behaviour (not its code), for
-- lua_test.go:
--   metric(name, type [, labels, value]) writes "# TYPE name type" and
--   returns a function(labels, value) that writes one sample, the labels
--   table as name="value" pairs in pairs() order, values as given (no
--   escaping: the collector passes them escaped);
--   a collector is the module prometheus-collectors.NAME returning
--   { scrape = function }, run in pcall; a failed scrape is reported as
--   node_scrape_collector_success{collector="NAME"} 0.
-- Usage: lua5.1 exporter.lua NAME (with LUA_PATH finding the collector).

function metric(name, mtype, labels, value)
	io.write("# TYPE ", name, " ", mtype, "\n")
	local function sample(l, v)
		if v == nil then
			return
		end
		local parts = {}
		for k, x in pairs(l or {}) do
			parts[#parts + 1] = k .. '="' .. x .. '"'
		end
		io.write(name, l and ("{" .. table.concat(parts, ",") .. "}") or "", " ", v, "\n")
	end
	if value ~= nil then
		sample(labels, value)
	end
	return sample
end

local name = arg[1]
local collector = require("prometheus-collectors." .. name)
local ok, err = pcall(collector.scrape)
if not ok then
	io.stderr:write(tostring(err), "\n")
end
metric("node_scrape_collector_success", "gauge", { collector = name }, ok and 1 or 0)
