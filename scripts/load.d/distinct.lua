-- Mix 2: many distinct valid tokens (signed beforehand, one per identity), each verified in
-- full the first time it comes.
package.path = os.getenv("LOAD_DIR") .. "/?.lua;" .. package.path
local common = require("common")
local tokens = {}
for line in io.lines(os.getenv("LOAD_TOKENS")) do tokens[#tokens + 1] = line end
local next_one = 0
local thread_no = 0

function setup(thread)
  thread:set("offset", thread_no * math.floor(#tokens / 4))
  thread_no = thread_no + 1
end

function init(args)
  next_one = offset or 0
end

function request()
  next_one = next_one % #tokens + 1
  return wrk.format("POST", "/graphql", common.headers, common.body(tokens[next_one]))
end
