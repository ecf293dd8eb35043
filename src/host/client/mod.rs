//! What the host's Docker clients use to reach a machine: the docker
//! CLI context `b2d-NAME`, kept in the CLI's own format.

pub mod context;
