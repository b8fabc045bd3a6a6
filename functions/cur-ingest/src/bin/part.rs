//! cur-ingest-part: wires config, clients and the handler.
// The SDK futures nest deeply; the default layout query depth (128) is not enough.
#![recursion_limit = "256"]

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use cur_ingest::{part, Config, Deps};
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    curlew_lambda::logging::init();
    let deps = Deps::from_env(Config::from_env()?).await;
    let deps = &deps;
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<SqsEvent>| async move {
        Ok::<SqsBatchResponse, lambda_runtime::Error>(part::handle(deps, ev.payload).await.0)
    }))
    .await
}
