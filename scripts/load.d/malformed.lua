-- Mix 3: tokens that must be refused: not JWTs, bad base64, no kid, an unknown kid, alg none,
-- a forged signature, a huge one. Each answers 200 with a GraphQL error (BadRequest or
-- AccessDenied); none may answer anything else.
package.path = os.getenv("LOAD_DIR") .. "/?.lua;" .. package.path
local common = require("common")
local valid = os.getenv("LOAD_TOKEN")
local head, claims = valid:match("^([^.]+)%.([^.]+)%.")
local bad = {
  "",
  "not-a-token",
  "a.b.c",
  "a.b.c.d",
  "eyJhbGciOiJFUzI1NiJ9.e30.AAAA",
  "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." .. claims .. ".",
  "eyJhbGciOiJFUzI1NiIsImtpZCI6Im5vLXN1Y2gta2V5In0." .. claims .. ".AAAA",
  head .. "." .. claims .. ".AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
  head .. ".!!!." .. "AAAA",
  string.rep("x", 5000),
}
local bodies = {}
for i, token in ipairs(bad) do bodies[i] = common.body(token) end
local n = 0

function request()
  n = n % #bodies + 1
  return wrk.format("POST", "/graphql", common.headers, bodies[n])
end
