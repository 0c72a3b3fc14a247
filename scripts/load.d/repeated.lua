-- Mix 1: one valid context token, over and over (the verified-token cache's path).
package.path = os.getenv("LOAD_DIR") .. "/?.lua;" .. package.path
local common = require("common")
wrk.method = "POST"
wrk.path = "/graphql"
wrk.headers = common.headers
wrk.body = common.body(os.getenv("LOAD_TOKEN"))
