//! The access proof (being built): see issue 5.
