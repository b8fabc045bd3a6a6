//! onboard: wires config, clients, the access proof and the handler.
// The SDK futures nest deeply; the default layout query depth (128) is not enough.
#![recursion_limit = "256"]

use curlew::access::AccessClients;
use lambda_runtime::{service_fn, LambdaEvent};
use onboard::prove::AccessProver;
use onboard::watchdog::deadline_from_epoch_ms;
use onboard::{handler, Config, Deps, Settings};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    // The SDK's crates stay at warn whatever is asked: they print credentials below it.
    curlew_lambda::logging::init();
    let config = Config::from_env()?;
    let conf = curlew_lambda::sdk::config().await;
    let deps = Deps::new(
        config,
        Settings::default(),
        curlew_lambda::sdk::s3_client(&conf),
    )
    .map_err(anyhow::Error::from)?;
    let prover = AccessProver::new(AccessClients::from_env().await);
    let (deps, prover) = (&deps, &prover);
    lambda_runtime::run(service_fn(
        move |ev: LambdaEvent<serde_json::Value>| async move {
            let deadline = deadline_from_epoch_ms(ev.context.deadline);
            handler::handle(deps, prover, ev.payload, deadline)
                .await
                .map(|outcomes| serde_json::json!({ "outcomes": format!("{outcomes:?}") }))
                .map_err(lambda_runtime::Error::from)
        },
    ))
    .await
}
