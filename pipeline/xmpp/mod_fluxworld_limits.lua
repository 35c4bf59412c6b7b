-- What one client may send: a token bucket per client connection, `fluxworld_client_rate`
-- bytes a second and up to `fluxworld_client_burst` seconds of that at once. The private
-- Prosody loads it in place of mod_limits (pipeline/xmpp/prosody.py writes it to plugins/).
--
-- Why not mod_limits: on Prosody's network backend (server_epoll) it hands the rate to
-- the connection, which paces every read and ignores the burst: after N bytes the socket
-- is not read for N/rate seconds. At 4 kB/s a player's command (~200 bytes) stopped its
-- socket for 50 ms, so one sent within 50 ms of the last waited out the rest of them.
-- Here a client within its burst is never held. A flood is: once a read takes the bucket
-- below empty, the socket is not read again until the bucket is back at empty, so Prosody
-- parses at most one read (8 kB) beyond the allowance and nothing is dropped.
module:set_global();

local now = require "util.time".now;
local filters = require "util.filters";

local rate = module:get_option_number("fluxworld_client_rate", 4000);
local burst = module:get_option_number("fluxworld_client_burst", 2);

local function bytes_in(bytes, session)
	local bucket, t = session.fluxworld_bucket, now();
	bucket.balance = math.min(rate * burst, bucket.balance + (t - bucket.t) * rate) - #bytes;
	bucket.t = t;
	if bucket.balance < 0 then
		-- server_epoll's pause: it reads again after the delay, buffered data first.
		session.conn:pausefor(-bucket.balance / rate);
	end
	return bytes;
end

local function limit_clients(session)
	if session.type and session.type:match("^c2s") then
		session.fluxworld_bucket = { balance = rate * burst, t = now() };
		filters.add_filter(session, "bytes/in", bytes_in, 1000);
	end
end

function module.load()
	filters.add_filter_hook(limit_clients);
end

function module.unload()
	filters.remove_filter_hook(limit_clients);
end
