-- Argo CD health check for popconnect.io/FieldCatalog: Healthy once the
-- operator has read the current generation. Argo CD sets the global obj and
-- reads hs.status and hs.message.
local hs = {}

local function findCondition(status, conditionType)
  if status == nil or status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == conditionType then
      return c
    end
  end
  return nil
end

local generation = 0
if obj.metadata ~= nil and obj.metadata.generation ~= nil then
  generation = obj.metadata.generation
end
local status = obj.status
local ready = findCondition(status, "Ready")
if status ~= nil and status.observedGeneration == generation and ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or ""
  return hs
end

hs.status = "Progressing"
if status == nil or status.observedGeneration ~= generation then
  hs.message = "Waiting for the operator to reconcile generation " .. tostring(generation)
elseif ready ~= nil and ready.message ~= nil then
  hs.message = ready.message
else
  hs.message = "Waiting for the catalog to become Ready"
end
return hs
