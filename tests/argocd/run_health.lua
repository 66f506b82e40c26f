-- Runs an Argo CD health script on one object, as Argo CD does, with Debian's Lua 5.4:
--   lua5.4 tests/argocd/run_health.lua SCRIPT < object.json   (prints hs as JSON)
--
-- What Argo CD does and this driver copies:
-- - the object reaches the script as the global `obj`, JSON null as nil (its decodeValue);
--   integral numbers print without ".0" (gopher-lua's numbers are float64 printed like Go's);
-- - the script may use only the base and table libraries and a safe os (time, date, clock,
--   difftime): no string, math, io, debug or require; Lua 5.4's string methods ("x"):sub()
--   are cut off too, since without the string library gopher-lua has none;
-- - the result is the chunk's return value, a table with `status` and `message`.
-- A script error exits 1 with the error on stderr.

local cjson = require("cjson")

local script_path = arg[1]
if script_path == nil then
  io.stderr:write("usage: lua5.4 run_health.lua SCRIPT < object.json\n")
  os.exit(2)
end

local function argo_value(value)
  if value == cjson.null then
    return nil
  end
  if type(value) == "number" then
    return math.tointeger(value) or value
  end
  if type(value) == "table" then
    local copy = {}
    for key, item in pairs(value) do
      copy[key] = argo_value(item)
    end
    return copy
  end
  return value
end

local input = io.read("a")
local obj = argo_value(cjson.decode(input))

local file = assert(io.open(script_path, "r"))
local source = file:read("a")
file:close()

local env = {
  obj = obj,
  assert = assert,
  error = error,
  getmetatable = getmetatable,
  ipairs = ipairs,
  next = next,
  pairs = pairs,
  pcall = pcall,
  print = print,
  rawequal = rawequal,
  rawget = rawget,
  rawset = rawset,
  select = select,
  setmetatable = setmetatable,
  tonumber = tonumber,
  tostring = tostring,
  type = type,
  unpack = table.unpack,
  xpcall = xpcall,
  _VERSION = "Lua 5.1",
  table = {
    concat = table.concat,
    insert = table.insert,
    remove = table.remove,
    sort = table.sort,
  },
  os = { time = os.time, date = os.date, clock = os.clock, difftime = os.difftime },
}
env._G = env

local chunk, compile_error = load(source, "@" .. script_path, "t", env)
if chunk == nil then
  io.stderr:write(tostring(compile_error) .. "\n")
  os.exit(1)
end

local string_meta = getmetatable("")
local string_index = string_meta.__index
string_meta.__index = nil
local ok, hs = pcall(chunk)
string_meta.__index = string_index
if not ok then
  io.stderr:write(tostring(hs) .. "\n")
  os.exit(1)
end
if type(hs) ~= "table" then
  io.stderr:write("the health script returned " .. type(hs) .. ", not a table\n")
  os.exit(1)
end
io.write(cjson.encode(hs) .. "\n")
