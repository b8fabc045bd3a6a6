//! SQS batch item failures (ReportBatchItemFailures): only the messages that
//! should be retried are named; the rest of the batch is deleted.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse};

/// Collects the message ids to retry.
#[derive(Debug, Default)]
pub struct Failures {
    ids: Vec<String>,
}

impl Failures {
    pub fn retry(&mut self, message_id: Option<&str>) {
        let id = message_id.unwrap_or_default().to_owned();
        if !self.ids.contains(&id) {
            self.ids.push(id);
        }
    }

    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    pub fn response(&self) -> SqsBatchResponse {
        let mut resp = SqsBatchResponse::default();
        for id in &self.ids {
            let mut f = BatchItemFailure::default();
            f.item_identifier = id.clone();
            resp.batch_item_failures.push(f);
        }
        resp
    }
}
