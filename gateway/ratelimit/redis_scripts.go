package ratelimit

// admitScript admits a batch of requests, in order, each all or nothing:
// request i (from 0) charges n to its agency's rate (KEYS[2i+1], the
// GCRA's theoretical arrival time in microseconds of the server's clock)
// and its quota of the day (KEYS[2i+2], the units used). ARGV holds eight
// values per request: the rate per second, the burst, n, the daily quota
// (-1: none), the Unix time at which the quota key expires, the units the
// replica would like to charge ahead (its lease, redis_lease.go), the
// units of an earlier lease it gives back, and the live replicas. It
// returns five values per request: allowed (0/1), quota exceeded (0/1),
// microseconds to wait for the rate, units used today, and the units
// charged ahead. The quota key gets its expiry when INCRBY creates it.
//
// Units given back are taken off the rate and the count first, never
// below now or zero. Units charged ahead are charged only with an admitted
// request: at most an eighth of what the bucket still holds after it,
// divided by the live replicas, and none unless the day's quota keeps
// eight times as many per live replica after it. So the last units of a
// quota are admitted request by request, by whichever replica asks, and a
// lease does not leave another replica refused at the end of the day. A
// request of n = 0 only gives back.
//
// One script for the batch rather than one call per request: Redis then
// parses, looks up and starts one script, not one per request (measured:
// 6-7 instead of 9 microseconds of the server's CPU per request).
const admitScript = `
local out = {}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
for i = 0, #KEYS / 2 - 1 do
  local rk, qk, a = KEYS[2 * i + 1], KEYS[2 * i + 2], 8 * i
  local rps = tonumber(ARGV[a + 1])
  local burst = tonumber(ARGV[a + 2])
  local n = tonumber(ARGV[a + 3])
  local quota = tonumber(ARGV[a + 4])
  local want = tonumber(ARGV[a + 6])
  local give = tonumber(ARGV[a + 7])
  local replicas = tonumber(ARGV[a + 8])
  local interval = 1000000 / rps
  if give > 0 then
    local tat = tonumber(redis.call('GET', rk) or '0')
    if tat > now then
      tat = math.max(now, tat - give * interval)
      redis.call('SET', rk, string.format('%.0f', math.ceil(tat)), 'PX', math.ceil((tat - now) / 1000) + 1000)
    end
    local q = tonumber(redis.call('GET', qk) or '0')
    if q > 0 then
      redis.call('DECRBY', qk, math.min(give, q))
    end
  end
  local allowed, exceeded, wait, extra = 0, 0, 0, 0
  local used = tonumber(redis.call('GET', qk) or '0')
  if n == 0 then
    allowed = 1
  elseif quota >= 0 and used + n > quota then
    exceeded = 1
  else
    local tat = tonumber(redis.call('GET', rk) or '0')
    if tat < now then tat = now end
    local new_tat = tat + n * interval
    local w = new_tat - burst * interval - now
    if w > 0 then
      wait = math.ceil(w)
    else
      if want > 0 then
        extra = math.min(want, math.floor((now + burst * interval - new_tat) / interval / (8 * replicas)))
        if quota >= 0 and math.floor((quota - used - n) / (8 * replicas)) < extra then
          extra = 0
        end
        if extra < 0 then extra = 0 end
        new_tat = new_tat + extra * interval
      end
      redis.call('SET', rk, string.format('%.0f', math.ceil(new_tat)), 'PX', math.ceil((new_tat - now) / 1000) + 1000)
      used = redis.call('INCRBY', qk, n + extra)
      if used == n + extra then
        redis.call('EXPIREAT', qk, ARGV[a + 5])
      end
      allowed = 1
    end
  end
  out[5 * i + 1], out[5 * i + 2], out[5 * i + 3], out[5 * i + 4], out[5 * i + 5] = allowed, exceeded, wait, used, extra
end
return out
`

// mergeScript adds, after an outage, the units a replica admitted on its
// own (ARGV[2]) to the day's quota count (KEYS[1]), first raising it to
// what the replica last saw there (ARGV[1]): a server that restarted
// without its data forgets nothing the replicas knew. ARGV[3] is the key's
// expiry (Unix time). It returns the new count.
const mergeScript = `
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
local floor = tonumber(ARGV[1])
if v < floor then v = floor end
v = v + tonumber(ARGV[2])
redis.call('SET', KEYS[1], v)
redis.call('EXPIREAT', KEYS[1], ARGV[3])
return v
`

// heartbeatScript says that replica ARGV[1] is live, in a sorted set
// (KEYS[1]) scored by the server's clock in milliseconds, forgets the
// replicas not heard from in ARGV[2] milliseconds, and returns how many
// are left: the replicas that share the limits now. The server's clock,
// not the replicas', so that a replica whose clock is off counts alike.
const heartbeatScript = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ttl)
redis.call('PEXPIRE', KEYS[1], ttl)
return redis.call('ZCARD', KEYS[1])
`
