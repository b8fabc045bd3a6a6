//! Onboarding: how a customer connects a payer account. curlew mints the
//! tenant's External ID and a single-use onboarding token (`secret`,
//! `pending`) and generates everything the customer deploys (`policy`,
//! `template`).

pub mod pending;
pub mod secret;

pub use pending::{OnboardingError, OnboardingHints, Onboardings, PendingOnboarding, Started};
pub use secret::{ExternalId, OnboardingToken};
