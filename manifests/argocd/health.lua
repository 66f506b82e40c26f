-- Argo CD health check of krally.dev/BenchmarkTask: the task's status, as the krally operator
-- writes it, mapped to an Argo CD health status with a message saying why.
-- Installed as argocd-cm's resource.customizations.health.krally.dev_BenchmarkTask:
-- argocd-cm-patch.yaml next to this file holds this very script (a unit test keeps them equal).
--
-- Argo CD runs it in gopher-lua (Lua 5.1) with only the base, table and a safe os library:
-- no string or math library. So it formats no number itself; every text shown is one the
-- operator computed once (status.message, status.display, status.sla[].detail).
--
--   status                                           health
--   no status yet, or observedGeneration behind      Progressing (the operator has not acted)
--   Pending, Running, Finishing                      Progressing
--   runner state Error, or phase Failed              Degraded (Failed's reason and message)
--   Succeeded and the SLA failed                     Degraded (each failed criterion)
--   Succeeded and the SLA passed (or no verdict)     Healthy
--   Aborted                                          Suspended (see below)
--   a phase this script does not know                Unknown
--
-- Aborted is Suspended, not Degraded: only spec.abort, the owner's own deliberate stop (as
-- a Job's spec.suspend, which Argo CD shows Suspended), leads there; nothing went wrong with
-- the system under test and there is no verdict to call bad. A runner killed or evicted
-- without spec.abort is phase Failed, hence Degraded.

local function str(value)
  if type(value) == "string" then
    return value
  end
  return ""
end

local function tab(value)
  if type(value) == "table" then
    return value
  end
  return {}
end

local function condition(status, ctype)
  for _, cond in ipairs(tab(status.conditions)) do
    if type(cond) == "table" and cond.type == ctype then
      return cond
    end
  end
  return nil
end

-- The run's figures from status.display ("iterations 1500/1500, failures 2 (0.1%), p95
-- 0.012s, hooks 4/4"), those named in `keys` only when given.
local COLUMNS = {
  { "progress", "iterations" },
  { "failures", "failures" },
  { "p95", "p95" },
  { "hooks", "hooks" },
  { "recovery", "recovery" },
}

local function with_figures(message, status, keys)
  local shown = tab(status.display)
  local parts = {}
  for _, column in ipairs(COLUMNS) do
    local value = str(shown[column[1]])
    if value ~= "" and (keys == nil or keys[column[1]]) then
      table.insert(parts, column[2] .. " " .. value)
    end
  end
  if #parts == 0 then
    return message
  end
  return message .. " (" .. table.concat(parts, ", ") .. ")"
end

-- The failed criteria: the operator's short form (display.failedSLA), else each detail.
local function failed_sla(status)
  local short = str(tab(status.display).failedSLA)
  if short ~= "" then
    return short
  end
  local parts = {}
  for _, item in ipairs(tab(status.sla)) do
    if type(item) == "table" and item.success == false then
      local detail = str(item.detail)
      local name = str(item.criterion)
      if detail ~= "" then
        name = name .. ": " .. detail
      end
      table.insert(parts, name)
    end
  end
  if #parts == 0 then
    local cond = condition(status, "SLAPassed")
    if cond ~= nil and str(cond.message) ~= "" then
      return str(cond.message)
    end
    return "no criterion detail recorded"
  end
  return table.concat(parts, "; ")
end

local function health(task)
  local hs = {}
  local meta = tab(task.metadata)
  local status = task.status
  if type(status) ~= "table" or status.phase == nil then
    hs.status = "Progressing"
    hs.message = "Waiting for the krally operator to accept the task"
    return hs
  end

  local generation = meta.generation
  local observed = status.observedGeneration
  if type(generation) == "number" and (type(observed) ~= "number" or observed < generation) then
    hs.status = "Progressing"
    local seen = "none"
    if type(observed) == "number" then
      seen = tostring(observed)
    end
    hs.message = "Waiting for the krally operator to observe generation " .. tostring(generation)
      .. " (status is of generation " .. seen .. ")"
    return hs
  end

  local phase = status.phase
  local message = str(status.message)
  local runner = tab(status.runner)

  if phase == "Failed" then
    local reason = "Failed"
    local cond = condition(status, "Failed")
    if cond ~= nil and str(cond.reason) ~= "" then
      reason = str(cond.reason)
    end
    hs.status = "Degraded"
    hs.message = reason .. ": " .. message
    return hs
  end

  -- The runner reported an error: Failed once the operator has written it; Degraded already.
  if runner.state == "Error" and phase ~= "Succeeded" and phase ~= "Aborted" then
    hs.status = "Degraded"
    hs.message = "RunnerError: runner failed: " .. str(runner.error)
    return hs
  end

  if phase == "Pending" or phase == "Running" or phase == "Finishing" then
    -- The phase's message already says the progress ("load running at 750/1500 iterations").
    hs.status = "Progressing"
    hs.message = with_figures(phase .. ": " .. message, status, { failures = true, hooks = true })
    return hs
  end

  if phase == "Succeeded" then
    local passed = status.passSLA
    if passed == nil then
      local cond = condition(status, "SLAPassed")
      if cond ~= nil and cond.status == "False" then
        passed = false
      elseif cond ~= nil and cond.status == "True" then
        passed = true
      end
    end
    if passed == false then
      hs.status = "Degraded"
      hs.message = with_figures("SLA failed: " .. failed_sla(status), status)
    elseif passed == true then
      hs.status = "Healthy"
      hs.message = with_figures("SLA passed", status)
    else
      hs.status = "Healthy"
      hs.message = with_figures("Load finished; no SLA verdict recorded", status)
    end
    return hs
  end

  if phase == "Aborted" then
    hs.status = "Suspended"
    hs.message = with_figures("Aborted: " .. message, status)
    return hs
  end

  hs.status = "Unknown"
  local name = str(phase)
  if name == "" then
    name = "(" .. type(phase) .. ")"
  end
  hs.message = "Unknown BenchmarkTask phase " .. name .. ": " .. message
  return hs
end

return health(obj)
