-- Shared by the three mixes: a verifyToken request for a token, and a count of answers that
-- are not what the mix expects (read in done()).
local M = {}

function M.body(token)
  return '{"query":"query check($t: ID!) { verifyToken(token: $t) { identity contexts } }",' ..
    '"operationName":"check","variables":{"t":"' .. token .. '"}}'
end

M.headers = { ["Content-Type"] = "application/json" }

return M
