//! Guest agent logic (`b2d-init`, PID 1).

pub mod boot;
pub mod clock;
pub mod cmdline;
pub mod control;
pub mod disk;
pub mod docker_api;
pub mod engine;
pub mod hostkeys;
pub mod ingress;
pub mod initrd;
pub mod lan;
pub mod logger;
pub mod modules;
pub mod mounts;
pub mod network;
pub mod portwatch;
pub mod profile;
pub mod ready;
pub mod reclaim;
pub mod services;
pub mod shares;
pub mod shutdown;
pub mod supervisor;
pub mod tls;
pub mod tunnel;
pub mod users;
