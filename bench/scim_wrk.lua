-- The SCIM workloads for wrk (bench/scim_bench.py runs it):
--   wrk -s bench/scim_wrk.lua URL -- MODE TOKEN FILE RUN
-- MODE is plain (the URL as it is), lookup (a userName from FILE, one a line), create (a new user each request, named
-- after RUN and the thread so no two collide) or patch (a user id from FILE gets a new title).
-- done() prints one JSON line that scim_bench.py reads: wrk keeps no response bodies, so only
-- the count of non-2xx responses is known.

local titles = { "Manager", "Engineer", "Teamleider", "Consultant", "Adviseur", "Stagiair" }
local firsts = { "Jan", "Anna", "Jurgen", "Zoe", "Soren", "Lukasz", "Jose", "Fatima" }
local surnames = { "Jansen", "de Vries", "Bakker", "Muller", "Nowak", "Garcia", "Visser" }
local threads = {}
local mode, items, run, counter  -- thread_id is a global that setup() gives each thread

local function escape(text)
  return (text:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

function setup(thread)
  thread:set("thread_id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  mode, run = args[1], args[4]
  if mode == "plain" then  -- the URL as given, nothing else: the ceiling
    return
  end
  wrk.headers["Authorization"] = "Bearer " .. args[2]
  wrk.headers["Content-Type"] = "application/scim+json"
  wrk.headers["Accept"] = "application/scim+json"
  items = {}
  for line in io.lines(args[3]) do
    table.insert(items, line)
  end
  counter = 0
  math.randomseed(os.time() + (thread_id or 0))
end

local function pick(list)
  return list[math.random(#list)]
end

function request()
  if mode == "plain" then
    return wrk.format()
  end
  if mode == "lookup" then
    local filter = escape('userName eq "' .. pick(items) .. '"')
    return wrk.format("GET", "/scim/v2/Users?filter=" .. filter)
  end
  if mode == "create" then
    counter = counter + 1
    local login = string.format("scim.%s.%d.%d", run, thread_id or 0, counter)
    local first, surname = pick(firsts), pick(surnames)
    local body = string.format(
      '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"externalId":"%s",'
        .. '"userName":"%s@contoso.example.com","active":true,"displayName":"%s",'
        .. '"name":{"givenName":"%s","familyName":"%s"},'
        .. '"emails":[{"primary":true,"type":"work","value":"%s@example.com"}]}',
      login, login, (first .. " " .. surname):sub(1, 20), first, surname, login)
    return wrk.format("POST", "/scim/v2/Users", nil, body)
  end
  local body = string.format(
    '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],'
      .. '"Operations":[{"op":"Replace","path":"title","value":"%s %d"}]}',
    pick(titles), math.random(0, 999))
  return wrk.format("PATCH", "/scim/v2/Users/" .. pick(items), nil, body)
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"non_2xx":%d,"connect":%d,"read":%d,"write":%d,'
      .. '"timeout":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, errors.status, errors.connect, errors.read,
    errors.write, errors.timeout, latency:percentile(50), latency:percentile(99)))
end
