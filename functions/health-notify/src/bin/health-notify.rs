//! health-notify: wires config, clients and the handler.
// The SDK futures nest deeply; the default layout query depth (128) is not enough.
#![recursion_limit = "256"]

use health_notify::{handler, Config, Deps};
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    curlew_lambda::logging::init();
    let deps = Deps::from_env(Config::from_env()?).await;
    let deps = &deps;
    lambda_runtime::run(service_fn(
        move |ev: LambdaEvent<serde_json::Value>| async move {
            handler::handle(deps, ev.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        },
    ))
    .await
}
