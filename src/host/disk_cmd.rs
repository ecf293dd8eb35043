//! `b2d disk create` and `b2d disk inspect`.
