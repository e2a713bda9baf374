//! The installer step run by the Helm chart's pre-install Job, so secrets are made at install
//! time in the cluster and never appear in rendered manifests: `setup-credentials` makes the
//! API key the server bootstraps with, and the signing secret of the sidecar's webhook endpoint
//! (which the server registers at start-up). Made once; kept on upgrade.

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::PostParams;
use std::collections::BTreeMap;

fn secret(name: &str, data: BTreeMap<String, String>) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".into(),
                "tooken-installer".into(),
            )])),
            ..Default::default()
        },
        data: Some(
            data.into_iter()
                .map(|(k, v)| (k, ByteString(v.into_bytes())))
                .collect(),
        ),
        type_: Some("Opaque".into()),
        ..Default::default()
    }
}

/// Creates `name` unless it exists; `false` when it already did.
async fn create_once(secrets: &Api<Secret>, secret: &Secret) -> Result<bool, kube::Error> {
    match secrets.create(&PostParams::default(), secret).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(err) => Err(err),
    }
}

/// Makes the Secret `name` with `url`, a new `apiKey` and a new `webhookSecret`, unless it exists.
pub async fn credentials(
    client: kube::Client,
    namespace: &str,
    name: &str,
    api_url: &str,
) -> anyhow::Result<()> {
    let secrets: Api<Secret> = Api::namespaced(client, namespace);
    let key = tooken_contract::Secret::generate();
    let webhook_secret = format!("whsec_{}", tooken_contract::credential::random_base62(32));
    let data = BTreeMap::from([
        ("url".into(), api_url.to_owned()),
        ("apiKey".into(), key.into_exposed()),
        ("webhookSecret".into(), webhook_secret),
    ]);
    if create_once(&secrets, &secret(name, data)).await? {
        println!("created Secret {namespace}/{name} with a new API key and webhook secret");
    } else {
        println!("Secret {namespace}/{name} exists; kept it");
    }
    Ok(())
}
