package ratelimit

// admitScript charges n to the agency's rate (KEYS[1], the GCRA's
// theoretical arrival time in microseconds of the server's clock) and its
// quota of the day (KEYS[2], the units used), all or nothing. ARGV: the
// rate per second, the burst, n, the daily quota (-1: none) and the Unix
// time at which the quota key expires. It returns {allowed (0/1), quota
// exceeded (0/1), microseconds to wait for the rate, units used today}.
// The quota key gets its expiry when INCRBY creates it.
const admitScript = `
local rps = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local quota = tonumber(ARGV[4])
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
if quota >= 0 and used + n > quota then
  return {0, 1, 0, used}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = 1000000 / rps
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + n * interval
local wait = new_tat - burst * interval - now
if wait > 0 then
  return {0, 0, math.ceil(wait), used}
end
redis.call('SET', KEYS[1], string.format('%.0f', math.ceil(new_tat)), 'PX', math.ceil((new_tat - now) / 1000) + 1000)
used = redis.call('INCRBY', KEYS[2], n)
if used == n then
  redis.call('EXPIREAT', KEYS[2], ARGV[5])
end
return {1, 0, 0, used}
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
