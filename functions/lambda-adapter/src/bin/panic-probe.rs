//! A function whose code panics when asked to (`{"panic": true}` as its arguments), else answers
//! `"answered"`: the tests run it under cargo lambda to show what a bug in a handler costs a
//! caller and the sandbox. Not deployed (`scripts/build-lambdas` builds the handler crates).

use lambda_adapter::{Error, init, serve};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init(env!("CARGO_BIN_NAME"));
    serve((), |(), call| async move {
        let asked = call.arguments.as_ref().and_then(|a| a.get("panic")) == Some(&Value::Bool(true));
        if asked {
            panic!(
                "asked to panic; the request carried the context token eyJhbGciOiJFUzI1NiIsImtpZCI6InByb2JlIn0.eyJzdWIiOiJhbGV4IiwiY29udGV4dHMiOlsiZ2VuZXJhbCJdfQ.c2lnbmF0dXJlLXByb2Jl"
            );
        }
        Ok(Value::from("answered"))
    })
    .await
}
