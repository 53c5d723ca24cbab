-- Argo CD health check for popconnect.io/AgencyConnection (the contract is in
-- docs/architecture.md, "Argo CD health"). Argo CD sets the global obj and reads
-- hs.status and hs.message.
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
if status == nil or status.observedGeneration == nil or status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to reconcile generation " .. tostring(generation)
  return hs
end

local ready = findCondition(status, "Ready")
local fieldsValid = findCondition(status, "FieldsValid")
if ready ~= nil and ready.message ~= nil then
  hs.message = ready.message
else
  hs.message = ""
end

if obj.spec ~= nil and obj.spec.suspended == true then
  hs.status = "Suspended"
elseif fieldsValid ~= nil and fieldsValid.status == "False" then
  hs.status = "Degraded"
  if hs.message == "" and fieldsValid.message ~= nil then
    hs.message = fieldsValid.message
  end
elseif ready ~= nil and ready.status == "False" and ready.reason ~= "Pending" then
  hs.status = "Degraded"
elseif ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
else
  hs.status = "Progressing"
end
return hs
