//! SNS publishing: notices with filterable attributes (one message), and
//! batches of jobs (PublishBatch, 10 a call, several calls in flight).

use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
use curlew::pipeline::{Notice, Notify, NotifyFuture};

/// A string message attribute (for subscription filter policies).
pub fn attr(v: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(v)
        .build()
        .expect("data type and value are set")
}

fn sdk_error<E: std::error::Error + 'static>(e: E) -> String {
    aws_sdk_sns::error::DisplayErrorContext(e).to_string()
}

/// Publishes the pipeline's notices on the results topic, with the
/// attributes [`Notice::attributes`] names.
#[derive(Debug, Clone)]
pub struct SnsNotify {
    pub sns: aws_sdk_sns::Client,
    pub topic_arn: String,
}

impl Notify for SnsNotify {
    fn publish<'a>(&'a self, notice: &'a Notice) -> NotifyFuture<'a> {
        Box::pin(async move {
            let mut p = self
                .sns
                .publish()
                .topic_arn(&self.topic_arn)
                .message(serde_json::to_string(notice).expect("notice serialises"));
            for (k, v) in notice.attributes() {
                p = p.message_attributes(k, attr(&v));
            }
            p.send().await.map(|_| ()).map_err(sdk_error)
        })
    }
}

/// Batches of 10 in flight at once.
pub const BATCHES_IN_FLIGHT: usize = 16;

/// One message to publish in a batch: body and string attributes.
#[derive(Debug, Clone)]
pub struct Message {
    pub body: String,
    pub attributes: Vec<(&'static str, String)>,
}

/// Publish every message (PublishBatch, 10 per call, [`BATCHES_IN_FLIGHT`]
/// calls at once). Entries SNS reports as failed are retried once; an error
/// names how many were not published (the caller's retry re-publishes, which
/// the consumers tolerate).
pub async fn publish_all(
    sns: &aws_sdk_sns::Client,
    topic_arn: &str,
    messages: &[Message],
) -> Result<usize, String> {
    use futures_util::stream::{self, StreamExt};
    // The futures are made before the stream, not by a closure inside it:
    // the whole future must be provably Send when a caller boxes it as
    // `dyn Future + Send` (the sweep's dispatch), which rustc cannot do for
    // a stream of borrowing closures.
    let calls: Vec<_> = messages
        .chunks(10)
        .map(|chunk| publish_chunk(sns, topic_arn, chunk))
        .collect();
    let results: Vec<Result<usize, String>> = stream::iter(calls)
        .buffer_unordered(BATCHES_IN_FLIGHT)
        .collect()
        .await;
    let mut n = 0;
    for r in results {
        n += r?;
    }
    Ok(n)
}

/// One PublishBatch of at most 10, its failed entries retried once.
async fn publish_chunk(
    sns: &aws_sdk_sns::Client,
    topic_arn: &str,
    chunk: &[Message],
) -> Result<usize, String> {
    let mut pending: Vec<usize> = (0..chunk.len()).collect();
    for _attempt in 0..2 {
        let entries: Vec<PublishBatchRequestEntry> = pending
            .iter()
            .map(|&i| {
                let mut e = PublishBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message(&chunk[i].body);
                for (k, v) in &chunk[i].attributes {
                    e = e.message_attributes(*k, attr(v));
                }
                e.build().expect("id and message are set")
            })
            .collect();
        let out = sns
            .publish_batch()
            .topic_arn(topic_arn)
            .set_publish_batch_request_entries(Some(entries))
            .send()
            .await
            .map_err(sdk_error)?;
        pending = out
            .failed()
            .iter()
            .filter_map(|f| f.id().parse().ok())
            .collect();
        if pending.is_empty() {
            return Ok(chunk.len());
        }
    }
    Err(format!("{} message(s) not accepted by SNS", pending.len()))
}

/// Publish part jobs on the parts topic (attributes tenant, billing_period):
/// the planner's and the sweep's transport of a plan.
pub async fn publish_jobs(
    sns: &aws_sdk_sns::Client,
    topic_arn: &str,
    jobs: &[curlew::pipeline::PartJob],
    period: &str,
) -> Result<usize, String> {
    let messages: Vec<Message> = jobs
        .iter()
        .map(|j| Message {
            body: serde_json::to_string(j).expect("job serialises"),
            attributes: vec![
                ("tenant", j.tenant.clone()),
                ("billing_period", period.to_owned()),
            ],
        })
        .collect();
    publish_all(sns, topic_arn, &messages).await
}
