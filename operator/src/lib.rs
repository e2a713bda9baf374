//! The Tooken operator: `TookenToken` resources become tokens kept in Kubernetes Secrets.

pub mod backoff;
pub mod change_feed;
pub mod cli;
pub mod cluster;
pub mod controller;
pub mod crd;
pub mod duration;
#[cfg(test)]
mod fake;
pub mod health;
pub mod kube_client;
#[cfg(test)]
mod kube_tests;
pub mod leader;
pub mod metrics;
pub mod own_writes;
pub mod policy;
pub mod reconcile;
#[cfg(test)]
mod reconcile_tests;
pub mod requests;
pub mod secret_cache;
pub mod setup;
pub mod tooken_api;

use kube::CustomResourceExt;

/// The CRDs as committed in `crds/`: file name and YAML.
pub fn crds() -> [(&'static str, String); 2] {
    let yaml = |crd| yaml_serde::to_string(&crd).expect("the CRD serialises");
    [
        ("tookentokens.tooken.io.yaml", yaml(crd::TookenToken::crd())),
        (
            "tookenpolicies.tooken.io.yaml",
            yaml(policy::TookenPolicy::crd()),
        ),
    ]
}

/// The TookenToken CRD as committed in `crds/`.
pub fn crd_yaml() -> String {
    crds()[0].1.clone()
}
