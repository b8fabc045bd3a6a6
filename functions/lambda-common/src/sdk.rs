//! One SDK set-up for every function: the standard AWS settings, and S3
//! path-style addressing whenever an endpoint override is set (moto, local
//! stacks), whichever of `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_S3` names it.

/// The shared SDK configuration from the environment.
pub async fn config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// Whether an endpoint override asks for path-style S3.
pub fn endpoint_overridden() -> bool {
    std::env::var_os("AWS_ENDPOINT_URL").is_some()
        || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some()
}

/// An S3 client over `conf`.
pub fn s3_client(conf: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let mut b = aws_sdk_s3::config::Builder::from(conf);
    if endpoint_overridden() {
        b = b.force_path_style(true);
    }
    aws_sdk_s3::Client::from_conf(b.build())
}
