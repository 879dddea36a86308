-- wrk script for the loss step (bench/run.sh loss_test): HTTP/1.1 pipelining, DEPTH GET requests
-- written at once on each keep-alive connection. wrk counts every response, so its request total
-- stays comparable with bizprobe_exchanges_total{role="server"}.
--   wrk -t1 -c64 -d60s -s bench/pipeline.lua URL -- DEPTH      (DEPTH defaults to 1)
local req

init = function(args)
	local depth = tonumber(args[1]) or 1
	local r = {}
	for i = 1, depth do
		r[i] = wrk.format("GET", "/")
	end
	req = table.concat(r)
end

request = function()
	return req
end
