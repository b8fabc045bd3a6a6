//! Onboarding: how a customer connects a payer account. curlew mints the
//! tenant's External ID and a single-use onboarding token (`secret`,
//! `pending`) and generates everything the customer deploys (`policy`,
//! `template`).

pub mod keys;
pub mod pending;
pub mod policy;
pub mod secret;
pub mod template;

pub use pending::{
    OnboardingError, OnboardingHints, Onboardings, PendingOnboarding, Presenter, Started,
    DEFAULT_TOKEN_TTL_DAYS,
};
pub use policy::ReadExtras;
pub use secret::{ExternalId, OnboardingToken};
pub use template::{
    check_template_inputs, customer_template, role_name, TemplateError, TemplateSpec,
    ROLE_NAME_PREFIX,
};
