-- carpd's collector for prometheus-node-exporter-lua, installed as
-- /usr/lib/lua/prometheus-collectors/carpd.lua by the carpd package.
--
-- It runs `carpd metrics` (the same metrics node_exporter's textfile
-- collector gets on plain Linux; docs/metrics.md) and hands each family to
-- the exporter's metric() function, the one interface every version of
-- prometheus-node-exporter-lua gives its collectors (the raw writer changed
-- from output() to out:write() over time). HELP lines are left out: metric()
-- writes none, like every other collector of the exporter. Label values are
-- passed as carpd escaped them, since metric() writes them as they come.
--
-- The control socket is the one /etc/config/carpd names. When carpd does
-- not answer, `carpd metrics` prints carpd_up 0, which is passed on, and
-- the scrape fails (node_scrape_collector_success{collector="carpd"} 0).

local command = "s=$(uci -q get carpd.@carpd[0].control_socket); " ..
	"exec carpd metrics ${s:+-s \"$s\"} 2>/dev/null"

-- The labels of a sample, name -> value (still escaped), from the text
-- between its braces; nil when it is not name="value",... .
local function parse_labels(s)
	local labels, i = {}, 1
	while i <= #s do
		local name, j = s:match('^([%a_][%w_]*)="()', i)
		if not name then
			return nil
		end
		local k = j
		while true do
			local c = s:sub(k, k)
			if c == "" then
				return nil
			elseif c == "\\" then
				k = k + 2
			elseif c == '"' then
				break
			else
				k = k + 1
			end
		end
		labels[name] = s:sub(j, k - 1)
		i = k + 1
		if s:sub(i, i) == "," then
			i = i + 1
		end
	end
	return labels
end

local function scrape()
	local p = io.popen(command)
	if not p then
		error("carpd: cannot run carpd metrics")
	end
	local family, up = nil, nil
	for line in p:lines() do
		local name, mtype = line:match("^# TYPE ([%a_:][%w_:]*) (%a+)$")
		if name then
			family = metric(name, mtype)
		elseif family and line:sub(1, 1) ~= "#" then
			local labels, value
			name, labels, value = line:match("^([%a_:][%w_:]*){(.*)} (%S+)$")
			if name then
				labels = parse_labels(labels)
				if not labels then
					name = nil -- not carpd's format: leave the line out
				end
			else
				name, value = line:match("^([%a_:][%w_:]*) (%S+)$")
			end
			if name and value then
				family(labels, value)
				if name == "carpd_up" then
					up = value
				end
			end
		end
	end
	p:close()
	if up ~= "1" then
		error("carpd: carpd metrics got no answer from carpd")
	end
end

return { scrape = scrape }
